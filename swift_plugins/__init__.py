"""ms-swift plugins shipped by this project (see swift_plugins/editgrpo)."""
