"""Clinical report scorers (CheXbert, RadGraph, RaTEScore, GREEN, offline rules) and the ORMs."""
