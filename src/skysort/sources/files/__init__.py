"""The user's own data: a CSV or Parquet catalog and, optionally, a folder of images."""
