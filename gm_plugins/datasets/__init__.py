"""datasets components of gm_plugins, registered into MMAction2's registries."""
