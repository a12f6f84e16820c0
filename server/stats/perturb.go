package stats

import "math"

// The cell-key perturbation of the authority's reports (docs/REPORTS.md).
// Record keys are integers in [0, 2^32); a cell's key is the sum of its
// records' keys modulo 2^32 (uint32 arithmetic). The key's position in the
// key space, in millionths, gives two independent per-mille positions: the
// first chooses the cell's shift d, the second (the position within the
// first's per-mille) chooses how a small sum n + d is rounded to 0 or k.
// The published count is a function of n + d and the second position
// alone, so that a reader who watches the cell while its count changes by
// known steps learns n + d and never n itself (docs/REPORTS.md, "What a
// cell watched over time says").

// DefaultK is the disclosure threshold: no count from 1 to K-1 is
// published to the authority, and no sum of fewer than K records.
const DefaultK = 5

// permille returns the position of a cell key in the key space, 0 to 999.
func permille(key uint32) int { return int(uint64(key) * 1000 >> 32) }

// positions returns the two positions of a cell key: at, its per-mille in
// the key space, which chooses the shift; and round, its per-mille within
// that per-mille, which chooses the rounding of a small n + d. Over the
// key space the two are uniform and independent.
func positions(key uint32) (at, round int) {
	pm := int(uint64(key) * 1_000_000 >> 32)
	return pm / 1000, pm % 1000
}

// maxShift is the largest shift; the shifts are -maxShift..maxShift.
const maxShift = 2

// shiftTable gives the shift d of a cell by the per-mille position of its
// key: -2, -1, 0, +1, +2 with probabilities 1, 2, 4, 2, 1 in ten.
var shiftTable = [2*maxShift + 1]struct {
	below int
	d     int64
}{{100, -2}, {300, -1}, {700, 0}, {900, 1}, {1000, 2}}

// shiftP returns the probability, in per-mille, of shift d.
func shiftP(d int64) int {
	lo := 0
	for _, s := range shiftTable {
		if s.d == d {
			return s.below - lo
		}
		lo = s.below
	}
	return 0
}

// shift returns the shift chosen by the per-mille position at.
func shift(at int) int64 {
	for _, s := range shiftTable {
		if at < s.below {
			return s.d
		}
	}
	return maxShift
}

// roundUp returns the per-mille of the rounding positions that publish a
// shifted count c from maxShift+1 to k-1 as k rather than 0: c/k, to the
// per-cent, so that the published value's mean is c.
func roundUp(c, k int64) int { return int(100*c/k) * 10 }

// shifted returns the published value of a shifted count c = n + d whose
// rounding position is round: 0 up to maxShift (so that a count of 0 reads
// 0 whatever its shift), k or 0 from there to k-1 with mean c, and c from
// k up.
func shifted(c int64, round int, k int64) int64 {
	switch {
	case c <= maxShift:
		return 0
	case c < k:
		if round < roundUp(c, k) {
			return k
		}
		return 0
	}
	return c
}

// Outcome is a published value with its probability in per-mille.
type Outcome struct {
	Value int64
	P     int
}

// Outcomes returns the row of the perturbation table of a true count n
// with threshold k: the published values, in increasing order, and their
// probabilities in per-mille, which add up to 1000. The published value
// is n + d, d from -2 to +2 with probabilities 1, 2, 4, 2, 1 in ten, where
// n + d is at least k; 0 where n + d is at most 2; and k or 0 in between,
// with mean n + d. So zeros stay zero, no count from 1 to k-1 is
// published, counts from k+2 up keep within 2, and every row from 5 up is
// unbiased; the rows of 1 to 4 read low (docs/REPORTS.md gives their
// means).
func Outcomes(n, k int64) []Outcome {
	var row []Outcome
	add := func(v int64, p int) {
		if p == 0 {
			return
		}
		for i := range row {
			if row[i].Value == v {
				row[i].P += p
				return
			}
		}
		row = append(row, Outcome{v, p})
	}
	if n <= 0 {
		return []Outcome{{0, 1000}}
	}
	for _, s := range shiftTable {
		c, p := n+s.d, shiftP(s.d)
		switch {
		case c <= maxShift:
			add(0, p)
		case c < k:
			up := p * roundUp(c, k) / 1000
			add(0, p-up)
			add(k, up)
		default:
			add(c, p)
		}
	}
	for i := 1; i < len(row); i++ { // a handful of values: insertion sort
		for j := i; j > 0 && row[j].Value < row[j-1].Value; j-- {
			row[j], row[j-1] = row[j-1], row[j]
		}
	}
	return row
}

// Perturb returns the published value of a count n whose cell key is key,
// with threshold k. It is deterministic: the same n and key give the same
// value; for a fixed key it never falls as n grows, and it depends on n
// only through n + d, the count plus the key's shift.
func Perturb(n int64, key uint32, k int64) int64 {
	if n <= 0 {
		return 0
	}
	at, round := positions(key)
	return shifted(n+shift(at), round, k)
}

// Preimage returns the true counts a published count p can come from,
// [lo, hi], with threshold k: what a reader learns by inverting the
// table. Every preimage is a range without gaps; a value the table never
// publishes has lo = hi = -1.
func Preimage(p, k int64) (lo, hi int64) {
	if p > k {
		return p - maxShift, p + maxShift // only n + d = p reaches it
	}
	lo, hi = -1, -1
	for n := int64(0); n <= p+k+2*maxShift; n++ {
		for _, o := range Outcomes(n, k) {
			if o.Value == p && o.P > 0 {
				if lo < 0 {
					lo = n
				}
				hi = n
			}
		}
	}
	return lo, hi
}

// soleKey returns the key a cell is frozen with when every record it has
// at that moment is one organisation's: key moved so that its shift is
// not -2 (the positions of -2 take -1, and half of those of +1 take 0, so
// that the shift's mean stays 0). For that organisation's manager the
// others' part of the cell is then 0, and were the shift -2 the published
// value would say so: n + d = -2 comes from nothing else
// (docs/REPORTS.md, "What a cell watched over time says").
func soleKey(key uint32) uint32 {
	const slice = 429496730 // a tenth of the key space, rounded up
	switch at := permille(key); {
	case at < 100:
		return key + slice
	case at >= 700 && at < 800:
		return key - slice
	}
	return key
}

// sumShown reports whether a sum of records contributing records, whose
// cell key is key, is published with threshold k: when records plus the
// key's shift is at least k+2. Since the shift is at most 2, a published
// sum has at least k contributing records; and whether it is published
// depends on the records only through records + d, so that a manager who
// steps the contributors of a cell with records of their own does not
// learn the others' number of them.
func sumShown(records int64, key uint32, k int64) bool {
	if records <= 0 {
		return false
	}
	return records+shift(permille(key)) >= k+maxShift
}

// magnitudeScale is the share of a cell's largest contribution that the
// noise of a sum moves it by, at most.
const magnitudeScale = 0.5

// magnitudeNoise is the table of the factor e of a sum's noise, by the
// position (per-mille) of its scrambled cell key.
var magnitudeNoise = []struct {
	below int
	e     float64
}{{200, -1}, {500, -0.5}, {800, 0.5}, {1000, 1}}

// scramble maps a cell key to another position of the key space
// (multiplication by an odd constant, Knuth's), so that a sum's noise does
// not follow the noise of the count of the same records.
func scramble(key uint32) uint32 { return key * 2654435761 }

// PerturbSum returns the published value of a sum s of records whose
// largest contribution is top and whose cell key is key:
// round(s + 0.5 * top * e), e from the magnitude table. Callers publish a
// sum only when at least k records contribute, so s >= top and the value
// is never negative.
func PerturbSum(s, top int64, key uint32) int64 {
	at := permille(scramble(key))
	e := 1.0
	for _, m := range magnitudeNoise {
		if at < m.below {
			e = m.e
			break
		}
	}
	return max(0, int64(math.Round(float64(s)+magnitudeScale*float64(top)*e)))
}
