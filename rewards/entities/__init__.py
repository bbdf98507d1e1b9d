"""Clinical entities of reports: types, RaTE's type affinities, the analyzers (RaTE-NER + BioLORD, offline
lexicon) and their cache. Shared by the rewards (RaTEScore, rules) and the plugin's edit engine."""
