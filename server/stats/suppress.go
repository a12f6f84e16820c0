package stats

import (
	"math"
	"sort"
)

// DefaultK is the smallest count an aggregate that leaves an organisation
// may show: counts from 1 to K-1 are suppressed.
const DefaultK = 5

// Line is an additive relation between published cells: the cells of
// Parts add up to the cell Sum. The cells may be figures of one indicator
// (the groups of a breakdown add up to the period's total) or of several
// (the referrals to each service category add up to the referrals).
type Line struct {
	Parts []int
	Sum   int
}

// shift returns l with every cell moved by off.
func (l Line) shift(off int) Line {
	parts := make([]int, len(l.Parts))
	for i, p := range l.Parts {
		parts[i] = p + off
	}
	return Line{Parts: parts, Sum: l.Sum + off}
}

// Suppress decides which cells to hide so that no count from 1 to k-1 is
// shown, nor can be recovered from the lines. values are the published
// cells; lines the sums a reader knows hold between them; shared marks
// cells that other reports publish too (the period's totals), which every
// report must hide alike.
//
// Primary suppression hides every count from 1 to k-1. Then, as long as a
// line has exactly one hidden cell, a second cell of that line is hidden:
// the smallest non-zero part (a part rather than the sum, where it can).
// A shared cell is hidden to protect another only in a line of shared
// cells alone (the totals of the services and of the referrals), which
// every report decides alike from the same totals.
//
// Where lines overlap (units lie both in a municipality and in an
// organisation; a unit's referrals to one service lie both in a breakdown
// and in the unit's sum of services), hidden cells may still be solved for
// from several lines together. Suppress then solves the lines' equations
// for the hidden cells as a reader would (Gaussian elimination) and hides
// one more cell of a line of every cell it can solve for, until it can
// solve for none. It treats as solved, too, a hidden shared cell that the
// lines tie to other hidden shared cells more than the lines of shared
// cells alone do: a reader who holds two reports that publish the same
// shared cells could combine such ties into a value. With none, the
// reports of one period together let a reader solve for no more than each
// alone.
func Suppress(values []int64, lines []Line, shared []bool, k int64) []bool {
	hidden := make([]bool, len(values))
	for i, v := range values {
		hidden[i] = v >= 1 && v < k
	}
	for {
		lineRule(values, lines, shared, hidden)
		solved := solvable(lines, hidden, shared)
		if len(solved) == 0 {
			return hidden
		}
		// Hide another cell of a line each solved cell lies in; never a
		// shared cell, which another report would not hide.
		done := false
		for _, v := range solved {
			for _, l := range lines {
				if !contains(l, v) || sharedLine(l, shared) {
					continue
				}
				if c := pick(values, hidden, shared, l); c >= 0 {
					hidden[c] = true
					done = true
					break
				}
			}
		}
		if !done {
			return hidden // nothing left to hide: every cell of their lines is hidden or shared
		}
	}
}

func contains(l Line, c int) bool {
	if l.Sum == c {
		return true
	}
	for _, p := range l.Parts {
		if p == c {
			return true
		}
	}
	return false
}

// sharedLine reports whether every cell of l is shared.
func sharedLine(l Line, shared []bool) bool {
	if !shared[l.Sum] {
		return false
	}
	for _, p := range l.Parts {
		if !shared[p] {
			return false
		}
	}
	return true
}

// lineRule hides a second cell in every line with exactly one hidden cell,
// until there is none.
func lineRule(values []int64, lines []Line, shared, hidden []bool) {
	for changed := true; changed; {
		changed = false
		for _, l := range lines {
			n := 0
			if hidden[l.Sum] {
				n++
			}
			for _, p := range l.Parts {
				if hidden[p] {
					n++
				}
			}
			if n != 1 {
				continue
			}
			if c := pick(values, hidden, shared, l); c >= 0 {
				hidden[c] = true
				changed = true
			}
		}
	}
}

// solvable returns the hidden cells that the lines determine; or, if
// there are none, a hidden shared cell that the lines tie to other hidden
// shared cells more than the lines of shared cells alone do; or nothing.
func solvable(lines []Line, hidden, shared []bool) []int {
	// The unknowns are the hidden cells, this report's own before the
	// shared ones, so that after elimination a row whose first unknown is
	// shared says what the lines tell about shared cells alone.
	var vars []int
	col := map[int]int{}
	own := 0
	for _, wantShared := range []bool{false, true} {
		for i, h := range hidden {
			if h && shared[i] == wantShared {
				col[i] = len(vars)
				vars = append(vars, i)
			}
		}
		if !wantShared {
			own = len(vars)
		}
	}
	if len(vars) == 0 {
		return nil
	}
	equations := func(keep func(Line) bool) [][]float64 {
		var m [][]float64
		for _, l := range lines {
			if !keep(l) {
				continue
			}
			row := make([]float64, len(vars))
			any := false
			for _, p := range l.Parts {
				if c, ok := col[p]; ok {
					row[c]++
					any = true
				}
			}
			if c, ok := col[l.Sum]; ok {
				row[c]--
				any = true
			}
			if any {
				m = append(m, row)
			}
		}
		return m
	}
	m := equations(func(Line) bool { return true })
	r := eliminate(m)
	var solved []int
	var onShared [][]float64
	for _, row := range m[:r] {
		first, n := -1, 0
		for c, v := range row {
			if v != 0 {
				if first < 0 {
					first = c
				}
				n++
			}
		}
		if n == 1 {
			solved = append(solved, vars[first])
		}
		if first >= own {
			onShared = append(onShared, row)
		}
	}
	if len(solved) > 0 || len(onShared) == 0 {
		return solved
	}
	base := equations(func(l Line) bool { return sharedLine(l, shared) })
	r0 := eliminate(clone(base))
	if len(onShared) == r0 {
		return nil
	}
	for _, row := range onShared {
		if eliminate(append(clone(base), row)) > r0 {
			for c, v := range row {
				if v != 0 {
					return []int{vars[c]}
				}
			}
		}
	}
	return nil
}

// eliminate brings m to reduced row echelon form in place (Gauss-Jordan
// with partial pivoting, near-zero entries set to zero) and returns its
// rank: the first rank rows are the non-zero ones.
func eliminate(m [][]float64) int {
	const eps = 1e-9
	if len(m) == 0 {
		return 0
	}
	r := 0
	for c := 0; c < len(m[0]) && r < len(m); c++ {
		p := -1
		for i := r; i < len(m); i++ {
			if math.Abs(m[i][c]) > eps && (p < 0 || math.Abs(m[i][c]) > math.Abs(m[p][c])) {
				p = i
			}
		}
		if p < 0 {
			for i := r; i < len(m); i++ {
				m[i][c] = 0
			}
			continue
		}
		m[r], m[p] = m[p], m[r]
		f := m[r][c]
		for j := range m[r] {
			m[r][j] /= f
		}
		for i := range m {
			if i != r && m[i][c] != 0 {
				f := m[i][c]
				for j := range m[i] {
					m[i][j] -= f * m[r][j]
					if math.Abs(m[i][j]) <= eps {
						m[i][j] = 0
					}
				}
			}
		}
		r++
	}
	return r
}

func clone(m [][]float64) [][]float64 {
	out := make([][]float64, len(m))
	for i := range m {
		out[i] = append([]float64(nil), m[i]...)
	}
	return out
}

// pick chooses the cell of l to hide: the smallest non-zero shown part,
// else the sum, else the smallest shown part, or -1. Shared cells are
// chosen only in a line of shared cells alone.
func pick(values []int64, hidden, shared []bool, l Line) int {
	all := sharedLine(l, shared)
	open := func(c int) bool { return !hidden[c] && (all || !shared[c]) }
	var parts []int
	for _, p := range l.Parts {
		if open(p) {
			parts = append(parts, p)
		}
	}
	sort.SliceStable(parts, func(i, j int) bool { return values[parts[i]] < values[parts[j]] })
	for _, p := range parts {
		if values[p] > 0 {
			return p
		}
	}
	if open(l.Sum) {
		return l.Sum
	}
	if len(parts) > 0 {
		return parts[0]
	}
	return -1
}
