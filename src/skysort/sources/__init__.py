"""Where the catalog and the cutouts come from: SkyServer, the user's files, the simulated survey."""
