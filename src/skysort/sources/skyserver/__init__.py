"""SkyServer: the SQL search, its safety check, Galaxy Zoo labels and the ImgCutout fetcher."""
