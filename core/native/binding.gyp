{
  "targets": [
    {
      "target_name": "afcluster_native",
      "sources": ["afcluster_native.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
