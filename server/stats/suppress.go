package stats

import (
	"math"
	"sort"
)

// DefaultK is the smallest count an aggregate that leaves an organisation
// may show: counts from 1 to K-1 are suppressed.
const DefaultK = 5

// Line is an additive relation between published cells: the cells of
// Parts add up to the cell Sum.
type Line struct {
	Parts []int
	Sum   int
}

// Suppress decides which cells to hide so that no count from 1 to k-1 is
// shown, nor can be recovered by subtraction within a line. values are the
// published cells; lines the sums a reader knows hold between them;
// shared marks cells that other reports publish too (the total), which
// are never hidden to protect another cell, so that every report hides
// them alike.
//
// Primary suppression hides every count from 1 to k-1. Then, as long as a
// line has exactly one hidden cell, a second cell of that line is hidden:
// the smallest non-zero part (a part rather than the sum, where it can).
// When no line has exactly one hidden cell, no hidden cell is the
// difference of shown ones.
//
// Where lines overlap (units lie both in a municipality and in an
// organisation), hidden cells may still be solved for from several lines
// together; Suppress then solves the lines' equations for the hidden cells
// as a reader would (Gaussian elimination) and hides one more cell of a
// line of every cell it can solve for, until it can solve for none.
func Suppress(values []int64, lines []Line, shared []bool, k int64) []bool {
	hidden := make([]bool, len(values))
	for i, v := range values {
		hidden[i] = v >= 1 && v < k
	}
	for {
		lineRule(values, lines, shared, hidden)
		v := solvable(lines, hidden)
		if v < 0 {
			return hidden
		}
		// Hide another cell of a line the solved cell lies in.
		done := false
		for _, l := range lines {
			if !contains(l, v) {
				continue
			}
			if c := pick(values, hidden, shared, l); c >= 0 {
				hidden[c] = true
				done = true
				break
			}
		}
		if !done {
			return hidden // nothing left to hide: every cell of its lines is hidden or shared
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

// lineRule hides a second cell in every line with exactly one hidden cell,
// until there is none.
func lineRule(values []int64, lines []Line, shared, hidden []bool) {
	for changed := true; changed; {
		changed = false
		for _, l := range lines {
			members := append(append([]int{}, l.Parts...), l.Sum)
			n := 0
			for _, m := range members {
				if hidden[m] {
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

// solvable returns a hidden cell that the lines determine, or -1.
func solvable(lines []Line, hidden []bool) int {
	var vars []int
	col := map[int]int{}
	for i, h := range hidden {
		if h {
			col[i] = len(vars)
			vars = append(vars, i)
		}
	}
	if len(vars) == 0 {
		return -1
	}
	var m [][]float64
	for _, l := range lines {
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
	const eps = 1e-9
	r := 0
	for c := 0; c < len(vars) && r < len(m); c++ {
		p := -1
		for i := r; i < len(m); i++ {
			if math.Abs(m[i][c]) > eps {
				p = i
				break
			}
		}
		if p < 0 {
			continue
		}
		m[r], m[p] = m[p], m[r]
		for i := range m {
			if i != r && math.Abs(m[i][c]) > eps {
				f := m[i][c] / m[r][c]
				for j := range m[i] {
					m[i][j] -= f * m[r][j]
				}
			}
		}
		r++
	}
	for _, row := range m {
		only := -1
		for c, v := range row {
			if math.Abs(v) > eps {
				if only >= 0 {
					only = -2
					break
				}
				only = c
			}
		}
		if only >= 0 {
			return vars[only]
		}
	}
	return -1
}

// pick chooses the cell of l to hide: the smallest non-zero shown part,
// else the sum, else the smallest shown part, or -1.
func pick(values []int64, hidden, shared []bool, l Line) int {
	var parts []int
	for _, p := range l.Parts {
		if !hidden[p] && !shared[p] {
			parts = append(parts, p)
		}
	}
	sort.SliceStable(parts, func(i, j int) bool { return values[parts[i]] < values[parts[j]] })
	for _, p := range parts {
		if values[p] > 0 {
			return p
		}
	}
	if !hidden[l.Sum] && !shared[l.Sum] {
		return l.Sum
	}
	if len(parts) > 0 {
		return parts[0]
	}
	return -1
}
