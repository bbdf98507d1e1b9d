"""CXR prompt building and the registered swift template."""
