"""How a config is reviewed: plans (cost per device), diffs, where a value comes from, golden
files of the named experiments, memory estimates and JSON Schemas for editors. Reads
compose/'s public functions; nothing here is on the training path."""
