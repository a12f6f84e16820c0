package stats

import (
	"context"
	"database/sql"
	"fmt"
)

// A cell's noise is fixed the first time the cell is published with
// records (docs/REPORTS.md, "A cell's noise is fixed"): the cell key its
// records had then, and for a sum the largest contribution it had when
// first published, are kept in report_keys under the cell's address and
// perturb every later publication of the cell, whatever records it gains
// or loses. A reader who watches a cell while its records change sees one
// draw of its noise, not a new draw per change.

// frozenKey is what report_keys holds of a cell.
type frozenKey struct {
	key    uint32
	top    int64
	hasTop bool
}

// keyWrite is a cell's fixed noise to record: a new row, or the scale of a
// sum first published now.
type keyWrite struct {
	addr   string
	key    uint32
	top    int64
	hasTop bool
	update bool // the row exists; only top is new
}

func readFrozen(ctx context.Context, tx dbTx) (map[string]frozenKey, error) {
	rows, err := tx.QueryContext(ctx, `SELECT cell, key, top FROM report_keys`)
	if err != nil {
		return nil, fmt.Errorf("stats: publication: keys: %w", err)
	}
	defer rows.Close()
	out := map[string]frozenKey{}
	for rows.Next() {
		var cell string
		var key int64
		var top sql.NullInt64
		if err := rows.Scan(&cell, &key, &top); err != nil {
			return nil, fmt.Errorf("stats: publication: keys: %w", err)
		}
		out[cell] = frozenKey{key: uint32(key), top: top.Int64, hasTop: top.Valid}
	}
	return out, rows.Err()
}

// freeze replaces the key (and a sum's scale) of every published cell that
// has been published with records before by the ones it had then, and
// returns the cells whose noise is fixed now: those with records for the
// first time, and sums published for the first time.
func (p *Publication) freeze(frozen map[string]frozenKey) []keyWrite {
	var writes []keyWrite
	p.publishedCells(func(t, g, i int) {
		for _, ind := range Indicators {
			c := p.cells[ind]
			mag := c.top != nil
			if c.n[i] == 0 && (!mag || c.records[i] == 0) {
				if f, ok := frozen[p.address(t, g, ind)]; ok {
					c.key[i] = f.key // no records: the value is 0 or withheld whatever the key
				}
				continue
			}
			addr := p.address(t, g, ind)
			f, ok := frozen[addr]
			if !ok && c.sole[i] > 0 {
				c.key[i] = soleKey(c.key[i])
			}
			if ok {
				c.key[i] = f.key
			}
			publishedSum := mag && sumShown(c.records[i], c.key[i], p.K)
			switch {
			case !ok:
				w := keyWrite{addr: addr, key: c.key[i]}
				if publishedSum {
					w.top, w.hasTop = c.top[i], true
				}
				writes = append(writes, w)
			case mag && !f.hasTop && publishedSum:
				writes = append(writes, keyWrite{addr: addr, key: f.key, top: c.top[i], hasTop: true, update: true})
			case mag && f.hasTop:
				c.top[i] = f.top
			}
		}
	})
	return writes
}

// recordKeys records in tx the cells' noise fixed by a publication, each
// row only if it is absent (a sum's scale only if it has none), and
// reports whether all were: a cell another build recorded first keeps
// that one's key, which the next build uses.
func recordKeys(ctx context.Context, tx dbTx, writes []keyWrite) (bool, error) {
	if len(writes) == 0 {
		return true, nil
	}
	var rows [][]any
	var updates []keyWrite
	for _, w := range writes {
		var top any
		if w.hasTop {
			top = w.top
		}
		if w.update {
			updates = append(updates, w)
			continue
		}
		rows = append(rows, []any{w.addr, int64(w.key), top})
	}
	if all, err := tx.insertAbsent(ctx, "report_keys", "cell, key, top", rows); err != nil || !all {
		if err != nil {
			err = fmt.Errorf("stats: publication: keys: %w", err)
		}
		return false, err
	}
	if len(updates) == 0 {
		return true, nil
	}
	upd, err := tx.PrepareContext(ctx, `UPDATE report_keys SET top = ? WHERE cell = ? AND top IS NULL`)
	if err != nil {
		return false, fmt.Errorf("stats: publication: keys: %w", err)
	}
	defer upd.Close()
	for _, w := range updates {
		res, err := upd.ExecContext(ctx, w.top, w.addr)
		if err != nil {
			return false, fmt.Errorf("stats: publication: keys: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return false, err
		}
	}
	return true, nil
}

// readWithheld reads the count cells an audit has withheld before.
func readWithheld(ctx context.Context, tx dbTx) (map[string]bool, error) {
	rows, err := tx.QueryContext(ctx, `SELECT cell FROM report_withheld`)
	if err != nil {
		return nil, fmt.Errorf("stats: publication: withheld: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var cell string
		if err := rows.Scan(&cell); err != nil {
			return nil, fmt.Errorf("stats: publication: withheld: %w", err)
		}
		out[cell] = true
	}
	return out, rows.Err()
}

// withholdAgain withholds every count cell withheld before, whatever its
// count now, and marks it, for the audit, as held: what a reader knows of
// it is what they knew when it was first withheld.
func (p *Publication) withholdAgain(withheld map[string]bool) {
	if len(withheld) == 0 {
		return
	}
	p.publishedCells(func(t, g, i int) {
		for _, ind := range Indicators {
			c := p.cells[ind]
			if kindOf(ind) == magnitudeKind || !withheld[p.address(t, g, ind)] {
				continue
			}
			c.withheld[i], c.held[i] = true, true
		}
	})
}

// newlyWithheld returns the addresses of the count cells this
// publication's audit withheld for the first time.
func (p *Publication) newlyWithheld() []string {
	var cells []string
	p.publishedCells(func(t, g, i int) {
		for _, ind := range Indicators {
			c := p.cells[ind]
			if kindOf(ind) != magnitudeKind && c.withheld[i] && !c.held[i] {
				cells = append(cells, p.address(t, g, ind))
			}
		}
	})
	return cells
}

// recordWithheld records the withheld count cells in tx, each if absent,
// and reports whether all were.
func recordWithheld(ctx context.Context, tx dbTx, cells []string) (bool, error) {
	if len(cells) == 0 {
		return true, nil
	}
	rows := make([][]any, len(cells))
	for i, c := range cells {
		rows[i] = []any{c}
	}
	all, err := tx.insertAbsent(ctx, "report_withheld", "cell", rows)
	if err != nil {
		return false, fmt.Errorf("stats: publication: withheld: %w", err)
	}
	return all, nil
}

// publishedCells calls each with the time unit, group and index of every
// published cell of a whole period.
func (p *Publication) publishedCells(each func(t, g, i int)) {
	for t := p.grid.fragments; t < len(p.grid.units); t++ {
		for g := range p.groups {
			if p.published(t, g) {
				each(t, g, p.cell(t, g))
			}
		}
	}
}
