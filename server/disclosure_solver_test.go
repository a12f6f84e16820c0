package server_test

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// knowledge is what a reader of published aggregates knows about a set of
// non-negative integer unknowns (the true counts of the finest cells the
// published tables can be cut into): constraints "sum of coef·x over these
// unknowns lies in [lo, hi]". It is the attacker's side of disclosure
// control and knows nothing of how the server computes its figures.
//
// solve tightens what can be known by three means, repeated to a fixed
// point:
//   - Gaussian elimination of the exact constraints (lo == hi), whose
//     reduced rows are kept as constraints: every combination the exact
//     figures determine, and every unknown they pin;
//   - differencing of nested sums: a constraint on B and one on A ⊂ B give
//     one on B \ A (a year less a quarter, a month less its weeks, a
//     municipality less one of its units);
//   - interval propagation: each constraint bounds each of its unknowns by
//     the bounds of the others.
type knowledge struct {
	lo, hi []float64 // bounds of each unknown; hi may be +Inf
	cons   []constraint
	bySet  map[string]int // constraints with all coefficients 1, by their set
}

// constraint says lo <= sum coef[i]·x[vars[i]] <= hi. coef nil means every
// coefficient is 1. vars are sorted and distinct.
type constraint struct {
	vars   []int
	coef   []float64
	lo, hi float64
}

func (c *constraint) c(i int) float64 {
	if c.coef == nil {
		return 1
	}
	return c.coef[i]
}

const solverEps = 1e-7

func newKnowledge(n int) *knowledge {
	k := &knowledge{lo: make([]float64, n), hi: make([]float64, n), bySet: map[string]int{}}
	for i := range k.hi {
		k.hi[i] = math.Inf(1)
	}
	return k
}

func setKey(vars []int) string {
	b := make([]byte, 0, 3*len(vars))
	for _, v := range vars {
		b = binary.AppendUvarint(b, uint64(v))
	}
	return string(b)
}

func sortedSet(vars []int) []int {
	vs := slices.Clone(vars)
	slices.Sort(vs)
	return slices.Compact(vs)
}

// sum records that the unknowns vars add up to between lo and hi. A second
// constraint on the same set narrows the first.
func (k *knowledge) sum(vars []int, lo, hi float64) {
	vs := sortedSet(vars)
	if len(vs) == 0 {
		return
	}
	key := setKey(vs)
	if i, ok := k.bySet[key]; ok {
		c := &k.cons[i]
		c.lo, c.hi = math.Max(c.lo, lo), math.Min(c.hi, hi)
		return
	}
	k.bySet[key] = len(k.cons)
	k.cons = append(k.cons, constraint{vars: vs, lo: lo, hi: hi})
}

// linear records that sum coef[v]·x[v] over the map lies in [lo, hi].
func (k *knowledge) linear(terms map[int]float64, lo, hi float64) {
	ones := true
	var vars []int
	for v, c := range terms {
		if math.Abs(c) < solverEps {
			continue
		}
		vars = append(vars, v)
		if math.Abs(c-1) > solverEps {
			ones = false
		}
	}
	if len(vars) == 0 {
		return
	}
	if ones {
		k.sum(vars, lo, hi)
		return
	}
	slices.Sort(vars)
	coef := make([]float64, len(vars))
	for i, v := range vars {
		coef[i] = terms[v]
	}
	k.cons = append(k.cons, constraint{vars: vars, coef: coef, lo: lo, hi: hi})
}

// inconsistent is the error of a system no non-negative integers satisfy:
// the published figures contradict the method the attacker was told, or
// the solver is wrong.
type inconsistent struct{ what string }

func (e *inconsistent) Error() string { return "inconsistent knowledge: " + e.what }

// solve tightens the bounds to a fixed point (at most rounds rounds of
// elimination and differencing), and returns an *inconsistent error if
// the constraints cannot all hold.
func (k *knowledge) solve(rounds int) error {
	for r := 0; r < rounds; r++ {
		if err := k.propagate(); err != nil {
			return err
		}
		added := k.difference(maxDifference, 200000)
		if err := k.propagate(); err != nil {
			return err
		}
		added += k.eliminate()
		if err := k.propagate(); err != nil {
			return err
		}
		if added == 0 {
			break
		}
	}
	return nil
}

// propagate tightens unknowns and constraints by interval arithmetic until
// nothing moves. Bounds are integers: a bound is rounded inwards.
func (k *knowledge) propagate() error {
	for sweep := 0; sweep < 1000; sweep++ {
		changed := false
		for ci := range k.cons {
			c := &k.cons[ci]
			// The least and greatest the sum can be, with the number of
			// unbounded terms apart.
			minSum, maxSum := 0.0, 0.0
			minInf, maxInf := 0, 0
			term := func(i int) (float64, float64) {
				a, b := c.c(i)*k.lo[c.vars[i]], c.c(i)*k.hi[c.vars[i]]
				if c.c(i) < 0 {
					a, b = b, a
				}
				return a, b
			}
			for i := range c.vars {
				a, b := term(i)
				if math.IsInf(a, -1) {
					minInf++
				} else {
					minSum += a
				}
				if math.IsInf(b, 1) {
					maxInf++
				} else {
					maxSum += b
				}
			}
			if minInf == 0 && minSum > c.lo+solverEps {
				c.lo = minSum
			}
			if maxInf == 0 && maxSum < c.hi-solverEps {
				c.hi = maxSum
			}
			if c.lo > c.hi+solverEps {
				return &inconsistent{fmt.Sprintf("constraint on %d unknowns: [%g, %g]", len(c.vars), c.lo, c.hi)}
			}
			for i, v := range c.vars {
				a, b := term(i)
				// The others' least and greatest.
				var othersMin, othersMax float64
				switch {
				case minInf == 0:
					othersMin = minSum - a
				case minInf == 1 && math.IsInf(a, -1):
					othersMin = minSum
				default:
					othersMin = math.Inf(-1)
				}
				switch {
				case maxInf == 0:
					othersMax = maxSum - b
				case maxInf == 1 && math.IsInf(b, 1):
					othersMax = maxSum
				default:
					othersMax = math.Inf(1)
				}
				// c_i·x_i lies in [lo - othersMax, hi - othersMin].
				tlo, thi := c.lo-othersMax, c.hi-othersMin
				ci := c.c(i)
				nlo, nhi := tlo/ci, thi/ci
				if ci < 0 {
					nlo, nhi = nhi, nlo
				}
				if !math.IsInf(nlo, 0) && !math.IsNaN(nlo) {
					if r := math.Ceil(nlo - solverEps); r > k.lo[v] {
						k.lo[v] = r
						changed = true
					}
				}
				if !math.IsInf(nhi, 0) && !math.IsNaN(nhi) {
					if r := math.Floor(nhi + solverEps); r < k.hi[v] {
						k.hi[v] = r
						changed = true
					}
				}
				if k.lo[v] > k.hi[v] {
					return &inconsistent{fmt.Sprintf("unknown %d: [%g, %g]", v, k.lo[v], k.hi[v])}
				}
			}
		}
		if !changed {
			return nil
		}
	}
	return nil
}

// eliminate brings the exact constraints, and the unknowns already pinned,
// to reduced row echelon form and keeps each reduced row as a constraint.
// It returns how many constraints that added.
func (k *knowledge) eliminate() int {
	type row struct {
		terms map[int]float64
		rhs   float64
	}
	var rows []row
	for _, c := range k.cons {
		if c.hi-c.lo > solverEps {
			continue
		}
		r := row{terms: map[int]float64{}, rhs: c.lo}
		for i, v := range c.vars {
			if k.hi[v]-k.lo[v] < solverEps { // pinned: substituted
				r.rhs -= c.c(i) * k.lo[v]
				continue
			}
			r.terms[v] = c.c(i)
		}
		if len(r.terms) > 0 {
			rows = append(rows, r)
		}
	}
	// Short rows first: they pin unknowns that shorten the others.
	sort.SliceStable(rows, func(i, j int) bool { return len(rows[i].terms) < len(rows[j].terms) })
	var basis []row              // reduced rows, each with a pivot no other row has
	pivots := map[int]int{}      // pivot unknown -> its row
	in := map[int]map[int]bool{} // unknown -> the basis rows it is in
	put := func(bi, v int, c float64) {
		b := &basis[bi]
		c += b.terms[v]
		if math.Abs(c) < solverEps {
			delete(b.terms, v)
			delete(in[v], bi)
			return
		}
		b.terms[v] = c
		if in[v] == nil {
			in[v] = map[int]bool{}
		}
		in[v][bi] = true
	}
	for _, r := range rows {
		// Reduce by the basis: its rows hold no pivot but their own, so
		// one pass over the row's own unknowns is enough.
		vars := make([]int, 0, len(r.terms))
		for v := range r.terms {
			vars = append(vars, v)
		}
		for _, v := range vars {
			bi, ok := pivots[v]
			c := r.terms[v]
			if !ok || c == 0 {
				continue
			}
			for w, bc := range basis[bi].terms {
				r.terms[w] -= c * bc
				if math.Abs(r.terms[w]) < solverEps {
					delete(r.terms, w)
				}
			}
			r.rhs -= c * basis[bi].rhs
		}
		if len(r.terms) == 0 {
			continue
		}
		p := -1
		for v := range r.terms {
			if p < 0 || v < p {
				p = v
			}
		}
		f := r.terms[p]
		for v := range r.terms {
			r.terms[v] /= f
		}
		r.rhs /= f
		// Clear the new pivot from the basis.
		for bi := range in[p] {
			c := basis[bi].terms[p]
			for w, rc := range r.terms {
				put(bi, w, -c*rc)
			}
			basis[bi].rhs -= c * r.rhs
		}
		bi := len(basis)
		basis = append(basis, row{terms: map[int]float64{}, rhs: r.rhs})
		for w, rc := range r.terms {
			put(bi, w, rc)
		}
		pivots[p] = bi
	}
	added := 0
	for _, b := range basis {
		before := len(k.cons)
		if len(b.terms) == 1 {
			for v, c := range b.terms {
				val := b.rhs / c
				if math.Abs(val-math.Round(val)) < 1e-6 {
					val = math.Round(val)
				}
				k.sum([]int{v}, val, val)
			}
		} else {
			k.linear(b.terms, b.rhs, b.rhs)
		}
		added += len(k.cons) - before
	}
	return added
}

// maxDifference is the most unknowns a difference of two sums is kept
// for: a small count is pinned through a difference of few fragments, and
// the differences of large sums (a year less a week) are many and bound
// nothing small.
const maxDifference = 48

// difference adds, for every pair of constraints of coefficients 1 on sets
// A ⊂ B with B \ A of at most most unknowns, the constraint on B \ A; at
// most limit new ones. It returns how many it added or narrowed.
func (k *knowledge) difference(most, limit int) int {
	containing := map[int][]int{}
	for ci, c := range k.cons {
		if c.coef != nil {
			continue
		}
		for _, v := range c.vars {
			containing[v] = append(containing[v], ci)
		}
	}
	type derived struct {
		vars   []int
		lo, hi float64
	}
	var out []derived
	n := len(k.cons)
	for ai := 0; ai < n && len(out) < limit; ai++ {
		a := k.cons[ai]
		if a.coef != nil || math.IsInf(a.hi, 1) && a.lo <= 0 {
			continue // tells nothing
		}
		for _, bi := range containing[a.vars[0]] {
			b := k.cons[bi]
			if bi == ai || len(b.vars) <= len(a.vars) || len(b.vars)-len(a.vars) > most || !subset(a.vars, b.vars) {
				continue
			}
			rest := minus(b.vars, a.vars)
			out = append(out, derived{rest, b.lo - a.hi, b.hi - a.lo})
		}
	}
	added := 0
	for _, d := range out {
		key := setKey(d.vars)
		if i, ok := k.bySet[key]; ok {
			c := &k.cons[i]
			if d.lo > c.lo+solverEps || d.hi < c.hi-solverEps {
				c.lo, c.hi = math.Max(c.lo, d.lo), math.Min(c.hi, d.hi)
				added++
			}
			continue
		}
		k.sum(d.vars, d.lo, d.hi)
		added++
	}
	return added
}

// subset reports whether sorted a lies in sorted b.
func subset(a, b []int) bool {
	j := 0
	for _, v := range a {
		for j < len(b) && b[j] < v {
			j++
		}
		if j == len(b) || b[j] != v {
			return false
		}
	}
	return true
}

// minus returns sorted b without sorted a.
func minus(b, a []int) []int {
	out := make([]int, 0, len(b)-len(a))
	j := 0
	for _, v := range b {
		for j < len(a) && a[j] < v {
			j++
		}
		if j < len(a) && a[j] == v {
			continue
		}
		out = append(out, v)
	}
	return out
}

// bounds returns the least and greatest the sum of the unknowns vars can
// be: the sum of their bounds, narrowed by a constraint on exactly that
// set.
func (k *knowledge) bounds(vars []int) (float64, float64) {
	vs := sortedSet(vars)
	lo, hi := 0.0, 0.0
	for _, v := range vs {
		lo += k.lo[v]
		hi += k.hi[v]
	}
	if i, ok := k.bySet[setKey(vs)]; ok {
		lo, hi = math.Max(lo, k.cons[i].lo), math.Min(hi, k.cons[i].hi)
	}
	return math.Ceil(lo - solverEps), math.Floor(hi + solverEps)
}

// widths is a histogram of interval widths.
type widths map[string]int

func widthBucket(w float64) string {
	switch {
	case math.IsInf(w, 1):
		return "unbounded"
	case w < 5:
		return strconv.Itoa(int(w))
	case w < 10:
		return "5-9"
	case w < 20:
		return "10-19"
	case w < 50:
		return "20-49"
	}
	return "50+"
}

func (h widths) String() string {
	order := []string{"0", "1", "2", "3", "4", "5-9", "10-19", "20-49", "50+", "unbounded"}
	var parts []string
	for _, b := range order {
		if h[b] > 0 {
			parts = append(parts, fmt.Sprintf("width %s: %d", b, h[b]))
		}
	}
	var rest []string
	for b := range h {
		if !slices.Contains(order, b) {
			rest = append(rest, b)
		}
	}
	sort.Strings(rest)
	for _, b := range rest {
		parts = append(parts, fmt.Sprintf("%s: %d", b, h[b]))
	}
	return strings.Join(parts, ", ")
}

// TestKnowledgeDifferencing: a year and three of its quarters published
// exactly pin the fourth, however small.
func TestKnowledgeDifferencing(t *testing.T) {
	k := newKnowledge(4)
	k.sum([]int{0, 1, 2, 3}, 40, 40)
	k.sum([]int{0}, 10, 10)
	k.sum([]int{1}, 12, 12)
	k.sum([]int{0, 1, 2}, 37, 37)
	if err := k.solve(4); err != nil {
		t.Fatal(err)
	}
	if lo, hi := k.bounds([]int{3}); lo != 3 || hi != 3 {
		t.Errorf("fourth quarter: [%g, %g], want [3, 3]", lo, hi)
	}
	if lo, hi := k.bounds([]int{2}); lo != 15 || hi != 15 {
		t.Errorf("third quarter: [%g, %g], want [15, 15]", lo, hi)
	}
}

// TestKnowledgeElimination: exact sums that overlap without nesting (a 2×2
// table's rows, columns and one cell) are solved by elimination alone.
func TestKnowledgeElimination(t *testing.T) {
	// x0 x1 / x2 x3: rows 7 and 5, columns 9 and 3, x0 = 6.
	k := newKnowledge(4)
	k.sum([]int{0, 1}, 7, 7)
	k.sum([]int{2, 3}, 5, 5)
	k.sum([]int{0, 2}, 9, 9)
	k.sum([]int{1, 3}, 3, 3)
	k.linear(map[int]float64{0: 1, 3: 1}, 8, 8) // x0 + x3 = 8
	if added := k.eliminate(); added == 0 {
		t.Fatal("elimination added nothing")
	}
	if err := k.propagate(); err != nil {
		t.Fatal(err)
	}
	want := []float64{6, 1, 3, 2}
	for v, w := range want {
		if k.lo[v] != w || k.hi[v] != w {
			t.Errorf("x%d: [%g, %g], want %g", v, k.lo[v], k.hi[v], w)
		}
	}
}

// TestKnowledgeIntervals: noisy sums bound but do not pin; the bounds hold
// the truth and are as tight as the sums allow.
func TestKnowledgeIntervals(t *testing.T) {
	// Truth: x = 2, 9, 0. Published: x0+x1 in [9, 13], x0 in [0, 4],
	// x1 in [7, 11], x0+x1+x2 in [10, 12].
	k := newKnowledge(3)
	k.sum([]int{0, 1}, 9, 13)
	k.sum([]int{0}, 0, 4)
	k.sum([]int{1}, 7, 11)
	k.sum([]int{0, 1, 2}, 10, 12)
	if err := k.solve(4); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		vars   []int
		lo, hi float64
	}{
		{[]int{0}, 0, 4},
		{[]int{1}, 7, 11},
		{[]int{2}, 0, 3},     // 12 - 9
		{[]int{0, 1}, 9, 12}, // narrowed by the total
	}
	for _, c := range checks {
		if lo, hi := k.bounds(c.vars); lo != c.lo || hi != c.hi {
			t.Errorf("%v: [%g, %g], want [%g, %g]", c.vars, lo, hi, c.lo, c.hi)
		}
	}
}

// TestKnowledgeInconsistent: sums that contradict each other are found
// out, not silently clamped.
func TestKnowledgeInconsistent(t *testing.T) {
	k := newKnowledge(2)
	k.sum([]int{0, 1}, 3, 3)
	k.sum([]int{0}, 5, 6)
	if err := k.solve(4); err == nil {
		t.Error("x0+x1 = 3 with x0 >= 5 solved")
	}
}

// TestKnowledgeRandomExact: random exact sums over a small table are
// solved as far as their rank allows, and never beyond the truth. A
// system of full rank pins every unknown.
func TestKnowledgeRandomExact(t *testing.T) {
	truth := []float64{3, 0, 7, 1, 4, 2}
	k := newKnowledge(len(truth))
	sets := [][]int{{0, 1, 2}, {3, 4, 5}, {0, 3}, {1, 4}, {2, 5}, {0, 4}}
	for _, s := range sets {
		sum := 0.0
		for _, v := range s {
			sum += truth[v]
		}
		k.sum(s, sum, sum)
	}
	if err := k.solve(4); err != nil {
		t.Fatal(err)
	}
	for v, w := range truth {
		if k.lo[v] > w || k.hi[v] < w {
			t.Errorf("x%d: [%g, %g] excludes the truth %g", v, k.lo[v], k.hi[v], w)
		}
	}
	// The rows and columns of the 2×3 table (rank 4) with two cells of
	// different columns published exactly: rank 6, every cell pinned.
	k2 := newKnowledge(len(truth))
	for _, s := range append(sets[:5:5], []int{2}) {
		sum := 0.0
		for _, v := range s {
			sum += truth[v]
		}
		k2.sum(s, sum, sum)
	}
	k2.sum([]int{0}, 3, 3)
	if err := k2.solve(4); err != nil {
		t.Fatal(err)
	}
	for v, w := range truth {
		if k2.lo[v] != w || k2.hi[v] != w {
			t.Errorf("full rank: x%d: [%g, %g], want %g", v, k2.lo[v], k2.hi[v], w)
		}
	}
}
