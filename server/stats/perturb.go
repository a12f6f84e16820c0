package stats

import "math"

// The cell-key perturbation of the authority's reports (docs/REPORTS.md).
// Record keys are integers in [0, 2^32); a cell's key is the sum of its
// records' keys modulo 2^32 (uint32 arithmetic), and its position in the key space, in
// per-mille, chooses the noise from the perturbation table.

// DefaultK is the disclosure threshold: no count from 1 to K-1 is
// published to the authority, and no sum of fewer than K records.
const DefaultK = 5

// permille returns the position of a cell key in the key space, 0 to 999.
func permille(key uint32) int { return int(uint64(key) * 1000 >> 32) }

// Outcome is a published value with its probability in per-mille.
type Outcome struct {
	Value int64
	P     int
}

// Outcomes returns the row of the perturbation table of a true count n
// with threshold k: the published values and their probabilities in
// per-mille, which add up to 1000. Zeros stay zero; a count from 1 to k-1
// is published as 0 or k, with the probabilities that keep its mean;
// k keeps within 2 or becomes 0; k+1 keeps within 1; above, the noise is
// -2 to +2 with probabilities 1, 2, 4, 2, 1 in ten. Every row's mean is n
// to the per-mille.
func Outcomes(n, k int64) []Outcome {
	row, m := outcomes(n, k)
	return row[:m]
}

// outcomes returns the row of n, without allocating.
func outcomes(n, k int64) ([5]Outcome, int) {
	switch {
	case n <= 0:
		return [5]Outcome{{0, 1000}}, 1
	case n < k:
		up := int(1000 * n / k)
		return [5]Outcome{{0, 1000 - up}, {k, up}}, 2
	case n == k:
		zero := int(600 / k)
		return [5]Outcome{{0, zero}, {k, 600 - zero}, {k + 1, 200}, {k + 2, 200}}, 4
	case n == k+1:
		return [5]Outcome{{k, 250}, {k + 1, 500}, {k + 2, 250}}, 3
	}
	return [5]Outcome{{n - 2, 100}, {n - 1, 200}, {n, 400}, {n + 1, 200}, {n + 2, 100}}, 5
}

// Perturb returns the published value of a count n whose cell key is key,
// with threshold k: the outcome of n's row of the table at the key's
// position. It is deterministic: the same n and key give the same value.
func Perturb(n int64, key uint32, k int64) int64 {
	row, m := outcomes(n, k)
	at := permille(key)
	for _, o := range row[:m] {
		if at < o.P {
			return o.Value
		}
		at -= o.P
	}
	return row[m-1].Value
}

// Preimage returns the true counts a published count p can come from,
// [lo, hi], with threshold k: what a reader learns by inverting the
// table. Every preimage is a range without gaps.
func Preimage(p, k int64) (lo, hi int64) {
	if p >= k+4 {
		return p - 2, p + 2 // only the rows of the general noise reach it
	}
	lo, hi = -1, -1
	for n := max(0, p-k-2); n <= p+k+2; n++ {
		row, m := outcomes(n, k)
		for _, o := range row[:m] {
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
