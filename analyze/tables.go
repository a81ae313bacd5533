package analyze

// Tables are the summaries users ask for beside the findings.
type Tables struct{}

// buildTables is not written yet.
func buildTables(in *Input) Tables { return Tables{} }
