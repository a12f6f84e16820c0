package stats

// FullCount counts the indicators of q from the record tables, as Compute
// does for a query cut in a zone the rollups are not kept in, whatever
// q's zone: the reference the rollups are tested against.
var FullCount = scan

// Repinned runs the audit's reasoning over p as it is published, as an
// outside reader and as each organisation's manager, and returns how many
// counts from 1 to k-1 it pins, withholding nothing.
func Repinned(p *Publication) int {
	n := 0
	for _, fam := range auditFamilies() {
		s := p.newSystem(fam)
		for _, o := range append([]int{-1}, p.insiders()...) {
			n += len(s.run(o))
		}
	}
	return n
}
