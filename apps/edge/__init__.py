"""The model at the edge and in the cloud (notebook 10).

* In the browser: a static page (``index.html``, ``app.js``, ``model.js``) that downloads a
  model's ``manifest.json`` and ``model.onnx``, checks the file's sha256 against the
  manifest, and predicts with onnxruntime-web, with no server involved after loading.
  :mod:`apps.edge.runtime` installs the pinned runtime; :mod:`apps.edge.site` lays the
  page out, for the API (``/edge/``) and as a folder of static files.
* In the cloud: :mod:`apps.edge.cloud` assembles a Hugging Face Space for the UI and
  checks the platforms' configuration files offline.

``python -m apps.edge`` runs these from the command line.
"""
