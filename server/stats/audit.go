package stats

import (
	"time"

	"github.com/brygga/brygga/schema"
)

// The audit of a publication (docs/REPORTS.md, "Where perturbation alone
// is not enough"): it runs a reader's interval reasoning over every count
// published, as an outside reader and as each organisation's manager, and
// withholds cells until no count from 1 to k-1 is pinned exactly.

// AuditStats says what an audit found and did.
type AuditStats struct {
	// Rounds is how many times the reasoning ran over the whole
	// publication.
	Rounds int `json:"rounds"`
	// Pinned is how many counts the first round pinned: what perturbation
	// alone would have given away.
	Pinned int `json:"pinned"`
	// Withheld is how many cells the audit withheld.
	Withheld int `json:"withheld"`
	// Unresolved is how many pinned counts the audit found no cell to
	// withhold for, in its last round; 0 is the guarantee.
	Unresolved int `json:"unresolved"`
	// Unconverged is how many of the reasoning's runs stopped at their
	// bound of steps before a fixed point; 0 is the guarantee.
	Unconverged int `json:"unconverged"`
	// Took is how long the audit ran.
	Took time.Duration `json:"took"`
}

// unbounded is the upper bound of a count nothing bounds.
const unbounded = int64(1) << 50

// auditFamilies are the indicators the audit reasons over together: the
// contacts with the unique clients, who are at most the contacts; the
// referrals with the referrals to each service, which add up to them, and
// the referrals attended, at most the referrals; and the families of
// tests, vaccination and deaths (healthFamilies). The first member of a
// family with more than one is what the others add up to, except those
// that boundOf says are at most another member.
func auditFamilies() [][]Indicator {
	refs := []Indicator{Referrals}
	for _, c := range schema.ServiceCategoryEnum.Codes() {
		refs = append(refs, ReferralsTo(schema.ServiceCategory(c)))
	}
	refs = append(refs, ReferralsAttended)
	return append([][]Indicator{{Contacts, UniqueClients}, {NaloxoneHandouts}, {Reversals}, refs}, healthFamilies()...)
}

// How a line's counts relate.
const (
	sumLine   uint8 = iota // the first is the sum of the others
	boundLine              // the first is at most the second
	subLine                // the first is at most the sum of the others
	noLine                 // no relation: one that does not hold in a run
)

// system is the reasoning of one family: its counts (family member *
// cells + cell) and the sums between them, each line's sum first.
type system struct {
	p       *Publication
	inds    []Indicator
	lines   [][]int32 // each line: the sum, then its parts
	kinds   []uint8   // each line's relation
	byVar   [][]int32 // the lines of each count
	size    int       // cells of one indicator
	lo, hi  []int64
	srcLo   []int32 // the line that last set a bound, -1 for none
	srcHi   []int32
	queued  []bool
	work    []int32
	locked  []bool           // cells a reader has already seen in a final period
	truth   []int64          // each count's true value, for the reader of the run
	mode    []uint8          // each line's relation as it holds in truth, this run
	capped  int              // runs that stopped at the bound of steps
	gs      []int            // the published groups, in the order of the counts
	orgMuni map[[2]int][]int // an organisation's units in a municipality
}

func (p *Publication) newSystem(inds []Indicator) *system {
	g := p.grid
	s := &system{p: p, inds: inds, orgMuni: map[[2]int][]int{}}
	var units, munis, orgs []int
	for gi, gr := range p.groups {
		switch {
		case gr.dim == ByUnit:
			units = append(units, gi)
			key := [2]int{gr.org, gr.muni}
			s.orgMuni[key] = append(s.orgMuni[key], gi)
		case gr.dim == ByMunicipality:
			munis = append(munis, gi)
		case gr.dim == ByOrganisation:
			orgs = append(orgs, gi)
		}
	}
	rangeOf := func(d Dim) []int {
		var out []int
		for gi := p.dims[d][0]; gi < p.dims[d][1]; gi++ {
			out = append(out, gi)
		}
		return out
	}
	genders, ages := rangeOf(ByGender), rangeOf(ByAgeBand)
	s.gs = append([]int{0}, genders...)
	s.gs = append(s.gs, ages...)
	s.gs = append(s.gs, units...)
	s.gs = append(s.gs, munis...)
	s.gs = append(s.gs, orgs...)
	local := make([]int, len(p.groups))
	for l, gi := range s.gs {
		local[gi] = l
	}
	GL := len(s.gs)
	s.size = len(g.units) * GL
	n := s.size * len(inds)
	s.lo, s.hi = make([]int64, n), make([]int64, n)
	s.srcLo, s.srcHi = make([]int32, n), make([]int32, n)
	s.locked = make([]bool, n)
	of := map[int][]int{} // a municipality's or organisation's units
	for _, u := range units {
		of[p.groups[u].muni] = append(of[p.groups[u].muni], u)
		of[p.groups[u].org] = append(of[p.groups[u].org], u)
	}
	add := func(kind uint8, l []int32) {
		s.lines = append(s.lines, l)
		s.kinds = append(s.kinds, kind)
	}
	for f, ind := range inds {
		base := f * s.size
		v := func(t, gi int) int32 { return int32(base + t*GL + local[gi]) }
		// Unique clients do not add up: a whole is at most the sum of its
		// parts and at least each of them.
		line := func(l []int32) {
			if ind != UniqueClients {
				add(sumLine, l)
				return
			}
			add(subLine, l)
			for _, x := range l[1:] {
				add(boundLine, []int32{x, l[0]})
			}
		}
		group := func(t, sum int, parts []int) {
			if len(parts) == 0 {
				return
			}
			l := []int32{v(t, sum)}
			for _, q := range parts {
				l = append(l, v(t, q))
			}
			line(l)
		}
		for t := range g.units {
			group(t, 0, genders)
			group(t, 0, ages)
			group(t, 0, units)
			group(t, 0, munis)
			group(t, 0, orgs)
			for _, m := range munis {
				group(t, m, of[m])
			}
			for _, o := range orgs {
				group(t, o, of[o])
			}
		}
		for t := g.fragments; t < len(g.units); t++ {
			for _, gi := range s.gs {
				l := []int32{v(t, gi)}
				for _, part := range g.units[t].parts {
					l = append(l, v(part, gi))
				}
				line(l)
			}
		}
	}
	for f, ind := range inds[1:] {
		if by, ok := boundOf(inds, ind); ok {
			for c := 0; c < s.size; c++ {
				add(boundLine, []int32{int32((f+1)*s.size + c), int32(by*s.size + c)})
			}
		}
	}
	if len(inds) > 2 {
		for c := 0; c < s.size; c++ {
			l := []int32{int32(c)}
			for f, ind := range inds[1:] {
				if _, bounded := boundOf(inds, ind); !bounded {
					l = append(l, int32((f+1)*s.size+c))
				}
			}
			add(sumLine, l)
		}
	}
	s.byVar = make([][]int32, n)
	for li, l := range s.lines {
		for _, x := range l {
			s.byVar[x] = append(s.byVar[x], int32(li))
		}
	}
	s.queued = make([]bool, len(s.lines))
	s.mode = make([]uint8, len(s.lines))
	s.truth = make([]int64, n)
	return s
}

// split returns the family member and the publication's cell of a count.
func (s *system) split(x int) (Indicator, int) {
	c := x % s.size
	GL := len(s.gs)
	return s.inds[x/s.size], s.p.cell(c/GL, s.gs[c%GL])
}

// publishedCell reports whether count x is a published cell.
func (s *system) publishedCell(x int) bool {
	return (x%s.size)/len(s.gs) >= s.p.grid.fragments
}

// part returns organisation o's part of count x (o < 0: nobody's).
func (s *system) part(x, o int) int64 {
	if o < 0 {
		return 0
	}
	ind, c := s.split(x)
	p := s.p
	G := len(p.groups)
	t, gi := c/G, c%G
	n := p.cells[ind].n
	gr := p.groups[gi]
	switch gr.dim {
	case ByTotal:
		return n[t*G+o]
	case ByUnit:
		if gr.org == o {
			return n[c]
		}
		return 0
	case ByOrganisation:
		if gi == o {
			return n[c]
		}
		return 0
	case ByMunicipality:
		var sum int64
		for _, u := range s.orgMuni[[2]int{o, gi}] {
			sum += n[t*G+u]
		}
		return sum
	case ByGender, ByAgeBand:
		if gr.org >= 0 {
			return 0 // a hidden group: not reasoned over
		}
		h := p.hidden[o][0]
		if gr.dim == ByGender {
			return n[t*G+h+gi-p.dims[ByGender][0]]
		}
		return n[t*G+h+(p.dims[ByGender][1]-p.dims[ByGender][0])+gi-p.dims[ByAgeBand][0]]
	}
	return 0
}

// writable reports whether organisation o's records can count in the
// published group gi: the total, the genders and age bands, o's own
// units and organisation, and the municipalities of o's units.
func (s *system) writable(o, gi int) bool {
	gr := s.p.groups[gi]
	switch gr.dim {
	case ByTotal, ByGender, ByAgeBand:
		return gr.org < 0
	case ByUnit:
		return gr.org == o
	case ByOrganisation:
		return gi == o
	case ByMunicipality:
		return len(s.orgMuni[[2]int{o, gi}]) > 0
	}
	return false
}

// run reasons as the manager of organisation o (o < 0: an outside reader)
// and returns the counts it pins whose true value, less o's part, is from 1
// to k-1.
func (s *system) run(o int) []int {
	p := s.p
	k := p.K
	G := len(p.groups)
	var small [][2]int64 // the preimages of the values up to k+3
	for v := range k + 4 {
		lo, hi := Preimage(v, k)
		small = append(small, [2]int64{lo, hi})
	}
	for x := range s.lo {
		ind, c := s.split(x)
		t, gi := c/G, c%G
		tab := p.cells[ind]
		part := s.part(x, o)
		s.truth[x] = tab.n[c] - part
		gr := p.groups[gi]
		s.srcLo[x], s.srcHi[x] = -1, -1
		switch {
		case o >= 0 && ((gr.dim == ByUnit && gr.org == o) || (gr.dim == ByOrganisation && gi == o)):
			s.lo[x], s.hi[x] = 0, 0
		case t < p.grid.fragments || !p.published(t, gi):
			s.lo[x], s.hi[x] = 0, unbounded
		case tab.withheld[c]:
			// A withheld cell was at least k when it was withheld, or
			// (withheld for a manager's steps, below) at least 1: a
			// reader is given that, of its count now.
			s.lo[x], s.hi[x] = max(0, min(tab.n[c], k)-part), unbounded
		default:
			v := tab.value[c]
			lo, hi := v-2, v+2
			if v < k+4 {
				lo, hi = small[v][0], small[v][1]
			}
			s.lo[x], s.hi[x] = max(0, lo-part), hi-part
			if o >= 0 && s.writable(o, gi) {
				// The manager can step the cell with records of their
				// own and learn c = x + d, the others' part plus the
				// cell's shift: x is from c-2 to c+2.
				c := s.truth[x] + shift(permille(tab.key[c]))
				top := c + maxShift
				s.lo[x], s.hi[x] = max(s.lo[x], c-maxShift), min(s.hi[x], top)
			}
		}
	}
	s.work = s.work[:0]
	for li := range s.lines {
		s.mode[li] = s.holds(li)
		if s.mode[li] != noLine {
			s.queued[li] = true
			s.work = append(s.work, int32(li))
		}
	}
	for steps := 0; len(s.work) > 0 && steps < 400*len(s.lines); steps++ {
		li := s.work[0]
		s.work = s.work[1:]
		s.queued[li] = false
		s.propagate(li)
	}
	if len(s.work) > 0 {
		s.capped++
	}
	var pinned []int
	for x := range s.lo {
		if s.lo[x] != s.hi[x] {
			continue
		}
		if v := s.truth[x]; v >= 1 && v < k {
			pinned = append(pinned, x)
		}
	}
	return pinned
}

// holds returns how line li relates the counts of this run in truth: as
// its relation says, as a sum where a relation of unique clients happens
// to add up (a reader who takes them to add up is right there), or not at
// all where it does not hold (for a manager's reading, the clients the
// organisation did not meet need not follow the region's relations); the
// audit reasons with every relation that holds, since a reader who
// assumes one that does not only reasons wrongly.
func (s *system) holds(li int) uint8 {
	l := s.lines[li]
	if s.kinds[li] == boundLine {
		if s.truth[l[0]] <= s.truth[l[1]] {
			return boundLine
		}
		return noLine
	}
	var parts int64
	for _, x := range l[1:] {
		parts += s.truth[x]
	}
	switch sum := s.truth[l[0]]; {
	case sum == parts:
		return sumLine
	case sum < parts:
		return subLine
	}
	return noLine
}

// propagate tightens the bounds of line li's counts from one another.
func (s *system) propagate(li int32) {
	l := s.lines[li]
	switch s.mode[li] {
	case noLine:
		return
	case boundLine:
		a, b := l[0], l[1]
		s.set(li, a, s.lo[a], s.hi[b])
		s.set(li, b, s.lo[a], s.hi[b])
		return
	}
	exact := s.mode[li] == sumLine
	sum := l[0]
	var loParts, hiParts int64
	inf := 0
	for _, x := range l[1:] {
		loParts += s.lo[x]
		if s.hi[x] >= unbounded {
			inf++
		} else {
			hiParts += s.hi[x]
		}
	}
	set := func(x int32, lo, hi int64) { s.set(li, x, lo, hi) }
	hiSum := unbounded
	if inf == 0 {
		hiSum = hiParts
	}
	if !exact {
		loParts = 0 // a whole of clients is at least each part, not their sum
	}
	set(sum, loParts, hiSum)
	sLo, sHi := s.lo[sum], s.hi[sum]
	for _, x := range l[1:] {
		lo, hi := s.lo[x], s.hi[x]
		othersInf := inf
		othersHi := hiParts
		if hi >= unbounded {
			othersInf--
		} else {
			othersHi -= hi
		}
		newLo, newHi := lo, hi
		if othersInf == 0 {
			newLo = max(lo, sLo-othersHi)
		}
		if exact && sHi < unbounded {
			newHi = min(hi, sHi-(loParts-lo))
		}
		set(x, newLo, newHi)
	}
}

// set tightens count x's bounds to [lo, hi] where that is tighter, as line
// li found, and queues the count's other lines if it moved.
func (s *system) set(li, x int32, lo, hi int64) {
	changed := false
	if lo > s.lo[x] {
		s.lo[x], s.srcLo[x], changed = lo, li, true
	}
	if hi < s.hi[x] {
		s.hi[x], s.srcHi[x], changed = hi, li, true
	}
	if changed {
		for _, o := range s.byVar[x] {
			if o != li && !s.queued[o] && s.mode[o] != noLine {
				s.queued[o] = true
				s.work = append(s.work, o)
			}
		}
	}
}

// withholdFor withholds a published cell that the bounds of count x were
// derived through: of the lines that set them, and up to two steps back,
// the cell with the largest true count among those of at least k that are
// not withheld or locked. It reports whether it found one.
func (s *system) withholdFor(x int) bool {
	p := s.p
	frontier := map[int32]bool{}
	if s.srcLo[x] >= 0 {
		frontier[s.srcLo[x]] = true
	}
	if s.srcHi[x] >= 0 {
		frontier[s.srcHi[x]] = true
	}
	seen := map[int32]bool{}
	for depth := 0; depth < 3 && len(frontier) > 0; depth++ {
		best, bestN := -1, int64(-1)
		next := map[int32]bool{}
		for li := range frontier {
			seen[li] = true
			for _, y := range s.lines[li] {
				if int(y) == x {
					continue
				}
				for _, src := range []int32{s.srcLo[y], s.srcHi[y]} {
					if src >= 0 && !seen[src] {
						next[src] = true
					}
				}
				ind, c := s.split(int(y))
				tab := p.cells[ind]
				if !s.publishedCell(int(y)) || tab.withheld[c] || s.locked[y] || tab.n[c] < p.K {
					continue
				}
				if tab.n[c] > bestN {
					best, bestN = int(y), tab.n[c]
				}
			}
		}
		if best >= 0 {
			ind, c := s.split(best)
			p.cells[ind].withheld[c] = true
			return true
		}
		frontier = next
	}
	// None of at least k: the count is pinned through cells that are all
	// small, as a manager who steps them learns them (run). Withhold the
	// count's own cell, if it is published and not locked.
	ind, c := s.split(x)
	if tab := p.cells[ind]; s.publishedCell(x) && !tab.withheld[c] && !s.locked[x] {
		tab.withheld[c] = true
		return true
	}
	return false
}

// audit runs the reasoning over every family, as an outside reader and as
// each organisation's manager, and withholds cells until it pins no small
// count or finds nothing more to withhold. finals are the cells' values
// first published final: a cell published then is locked; one withheld
// then stays withheld while its true count is at least k.
func (p *Publication) audit(finals map[string]finalValue) AuditStats {
	start := time.Now()
	var st AuditStats
	G := len(p.groups)
	insiders := p.insiders()
	for _, fam := range auditFamilies() {
		if p.allZero(fam) {
			continue // no count from 1 to k-1 to pin, none of k to withhold
		}
		s := p.newSystem(fam)
		for x := range s.locked {
			ind, c := s.split(x)
			t, gi := c/G, c%G
			if !s.publishedCell(x) || !p.final[t] {
				continue
			}
			f, ok := finals[p.address(t, gi, ind)]
			if !ok {
				continue
			}
			tab := p.cells[ind]
			switch {
			case f.value != nil && *f.value == tab.value[c]:
				s.locked[x] = true
			case f.value == nil && tab.n[c] >= p.K:
				tab.withheld[c] = true
			}
		}
		for round := 0; round < 20; round++ {
			if round >= st.Rounds {
				st.Rounds = round + 1
			}
			progress, pins, unresolved := false, 0, 0
			for _, o := range append([]int{-1}, insiders...) {
				for _, x := range s.run(o) {
					pins++
					if s.withholdFor(x) {
						st.Withheld++
						progress = true
					} else {
						unresolved++
					}
				}
			}
			if round == 0 {
				st.Pinned += pins
			}
			if !progress {
				st.Unresolved += unresolved
				break
			}
		}
		st.Unconverged += s.capped
	}
	st.Took = time.Since(start)
	return st
}

// allZero reports whether every count of the family's indicators, cells
// and fragments alike, is 0, as in a region that records none of them.
func (p *Publication) allZero(fam []Indicator) bool {
	for _, ind := range fam {
		for _, n := range p.cells[ind].n {
			if n != 0 {
				return false
			}
		}
	}
	return true
}

// insiders returns the organisation groups: the managers the audit
// reasons as.
func (p *Publication) insiders() []int {
	var out []int
	for gi := p.dims[ByOrganisation][0]; gi < p.dims[ByOrganisation][1]; gi++ {
		out = append(out, gi)
	}
	return out
}
