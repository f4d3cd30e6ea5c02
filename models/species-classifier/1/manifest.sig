{
  "algorithm": "ed25519",
  "key_id": "ed25519:e9dd04ac187c1592",
  "signature": "XP46c1p/Ts7YSjvxehMae/MW9iGuvkuKhPVoE1HDNjBOWVtTNblk6b/z6AIGrTPCvoBr8ORyYHt/EBpM5NArDg==",
  "signs": "the exact bytes of manifest.json"
}
