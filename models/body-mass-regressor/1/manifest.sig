{
  "algorithm": "ed25519",
  "key_id": "ed25519:e9dd04ac187c1592",
  "signature": "Ws33wIosQvesRYle6WQsctyxnqXkr5fKYcP+EqjW1HBtXZ9btGjBt0/imb2g+iXJavAwAVhcQ0EyRdKcWGo7AA==",
  "signs": "the exact bytes of manifest.json"
}
