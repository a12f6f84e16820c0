package stats

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/brygga/brygga/schema"
)

// The publication is every cell of the authority's reports, of every
// period kind, breakdown and indicator of every year with records, computed
// at once from the records and their keys, perturbed, and audited
// (audit.go). docs/REPORTS.md describes it for the authority.

// indicatorKind says how an indicator is counted and protected.
type indicatorKind int

const (
	countKind     indicatorKind = iota // records counted, additive
	uniqueKind                         // distinct client codes
	magnitudeKind                      // a sum of amounts
)

func kindOf(i Indicator) indicatorKind {
	switch i {
	case UniqueClients:
		return uniqueKind
	case SyringesOut, NeedlesOut, SyringesReturned, NaloxoneDoses:
		return magnitudeKind
	}
	if isHealthMagnitude(i) {
		return magnitudeKind
	}
	return countKind
}

// pubGroup is a group of the publication: the total, a gender, an age
// band, a unit, a municipality, an organisation, or, never published, an
// organisation's gender or age band (what its manager knows exactly).
type pubGroup struct {
	dim   Dim // ByTotal for the total; "" and org >= 0 for a hidden one
	key   string
	label string
	org   int // the organisation group of a unit, or of a hidden group; -1 otherwise
	muni  int // the municipality group of a unit; -1 otherwise
}

// Publication is the authority's publication at one state of the
// records. It is read-only once built and safe for concurrent use.
type Publication struct {
	K int64
	// Seq is the change sequence number of the records it counts.
	Seq int64
	// Audit says what the audit found and did.
	Audit AuditStats
	// Stale says the records or a period's status have changed since it
	// was built, and the build of the current one is under way
	// (Publisher).
	Stale bool
	// Built is when it was built.
	Built time.Time

	grid   *grid
	groups []pubGroup
	dims   map[Dim][2]int // the published groups of each breakdown
	hidden map[int][2]int // an organisation group's hidden groups
	final  []bool         // per time unit
	// devices and now are what the status of periods was decided from.
	devices []device
	now     time.Time
	cells   map[Indicator]*cellTable
}

// cellTable holds one indicator's cells, indexed by time unit * groups +
// group.
type cellTable struct {
	n        []int64  // true value
	key      []uint32 // cell key
	top      []int64  // largest contribution (magnitudes)
	records  []int64  // contributing records (magnitudes)
	value    []int64  // published
	withheld []bool
	revised  []bool
	// held marks the count cells withheld because an audit withheld them
	// before (report_withheld).
	held []bool
	// sole is the organisation group whose records are all the cell has,
	// plus 1: 0 while it has none, -1 when it has several organisations'.
	sole []int32
}

func newCellTable(size int, magnitude bool) *cellTable {
	t := &cellTable{n: make([]int64, size), key: make([]uint32, size), value: make([]int64, size),
		withheld: make([]bool, size), revised: make([]bool, size), held: make([]bool, size),
		sole: make([]int32, size)}
	if magnitude {
		t.top, t.records = make([]int64, size), make([]int64, size)
	}
	return t
}

func (p *Publication) cell(t, g int) int { return t*len(p.groups) + g }

// pubFact is a live record as the publication reads it.
type pubFact struct {
	kind                                      schema.Kind
	at                                        int64
	unit, gender, age, code, service          string
	syringesOut, needlesOut, syringesReturned int64
	doses                                     int64
	attended                                  bool
	key, clientKey                            int64
}

// BuildPublication computes the publication of the records in db's
// reader's snapshot, which must include the rollups brought up to date
// (Compute and Refresh do that), as of now, with threshold k: every cell,
// perturbed; periods final or provisional by the devices' last syncs; then
// the audit; then the values of final periods compared with those first
// published. It records, in one transaction on the writer, the cells'
// noise fixed now, the cells withheld for the first time and the cells of
// the periods first final now. It is safe for concurrent use, also by
// several processes on one database: builds record one at a time, and a
// build that finds another recorded a cell before it since it read them
// builds again from what is recorded, so that concurrent builds publish
// the same; they do the work twice.
func BuildPublication(ctx context.Context, db DB, now time.Time, k int64) (*Publication, error) {
	return buildPublication(ctx, db, now, k, &keyCache{})
}

// buildAttempts is how many times a build starts over because another
// recorded cells before it.
const buildAttempts = 5

// buildPublication is BuildPublication with the records' keys from keys,
// which it brings up to date.
func buildPublication(ctx context.Context, db DB, now time.Time, k int64, keys *keyCache) (*Publication, error) {
	if k < 2 {
		k = DefaultK
	}
	if err := ensureRollups(ctx, db); err != nil {
		return nil, err
	}
	for range buildAttempts - 1 {
		p, err := buildOnce(ctx, db, now, k, keys)
		if err != errRaced {
			return p, err
		}
	}
	p, err := buildOnce(ctx, db, now, k, keys)
	if err == errRaced {
		err = fmt.Errorf("stats: publication: other builds kept recording cells first")
	}
	return p, err
}

// errRaced is what buildOnce returns when another build recorded a cell
// before it.
var errRaced = errors.New("stats: publication: another build recorded first")

// buildOnce builds the publication once; errRaced if another build
// recorded one of the cells it would record since it read them.
func buildOnce(ctx context.Context, db DB, now time.Time, k int64, keys *keyCache) (*Publication, error) {
	p, rec, err := buildUnrecorded(ctx, db, now, k, keys)
	if err != nil {
		return nil, err
	}
	return p, rec()
}

// buildUnrecorded builds the publication from one snapshot, and returns
// it with the function that records what it fixed (Publication.record).
func buildUnrecorded(ctx context.Context, db DB, now time.Time, k int64, keys *keyCache) (*Publication, func() error, error) {
	tx, err := db.read(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("stats: publication: %w", err)
	}
	defer tx.Rollback()
	p := &Publication{K: k, Built: now}
	if p.Seq, err = changeSeq(ctx, tx); err != nil {
		return nil, nil, err
	}
	today := now.In(zone)
	cur := today.Year()
	curISO, _ := today.ISOWeek()
	first := cur
	var minAt sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT min(at) FROM stats_facts WHERE live = 1 AND at >= ?`,
		time.Date(2000, 1, 1, 0, 0, 0, 0, zone).UnixMilli()).Scan(&minAt); err != nil {
		return nil, nil, fmt.Errorf("stats: publication: %w", err)
	}
	if minAt.Valid {
		first = min(cur, time.UnixMilli(minAt.Int64).In(zone).Year())
	}
	p.grid = newGrid(first, cur, isoYear(first), max(cur, curISO))
	units, err := p.readGroups(ctx, tx)
	if err != nil {
		return nil, nil, err
	}
	if p.devices, err = readDevices(ctx, tx); err != nil {
		return nil, nil, err
	}
	p.now = now
	p.final = p.grid.status(p.devices, now)
	if err := keys.update(ctx, tx, p.Seq); err != nil {
		return nil, nil, err
	}
	if err := p.count(ctx, tx, units, keys); err != nil {
		return nil, nil, err
	}
	frozen, err := readFrozen(ctx, tx)
	if err != nil {
		return nil, nil, err
	}
	writes := p.freeze(frozen)
	p.perturb()
	finals, err := readFinals(ctx, tx)
	if err != nil {
		return nil, nil, err
	}
	withheld, err := readWithheld(ctx, tx)
	if err != nil {
		return nil, nil, err
	}
	tx.Rollback()
	p.withholdAgain(withheld)
	p.Audit = p.audit(finals)
	return p, func() error { return p.record(ctx, db, writes, finals) }, nil
}

// record records, in one transaction on db's writer, the cells' noise
// fixed by p, the count cells its audit withheld for the first time, and
// the cells of the periods final for the first time, and marks the
// revised cells. Every row is added only if absent; if one was present,
// another build recorded it since p's were read, and record writes
// nothing and returns errRaced. Builds record one at a time (SQLite's one
// writer, PostgreSQL's advisory lock).
func (p *Publication) record(ctx context.Context, db DB, writes []keyWrite, finals map[string]finalValue) error {
	withheld := p.newlyWithheld()
	finalCells := p.newFinals(finals)
	if len(writes) == 0 && len(withheld) == 0 && len(finalCells) == 0 {
		return nil
	}
	tx, err := db.write(ctx)
	if err != nil {
		return fmt.Errorf("stats: publication: %w", err)
	}
	defer tx.Rollback()
	if err := tx.lock(ctx, publicationLock); err != nil {
		return fmt.Errorf("stats: publication: %w", err)
	}
	for _, rec := range []func() (bool, error){
		func() (bool, error) { return recordKeys(ctx, tx, writes) },
		func() (bool, error) { return recordWithheld(ctx, tx, withheld) },
		func() (bool, error) { return recordFinals(ctx, tx, finalCells) },
	} {
		all, err := rec()
		if err != nil {
			return err
		}
		if !all {
			return errRaced
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("stats: publication: %w", err)
	}
	return nil
}

// ensureRollups brings the rollups up to date if they lag behind.
func ensureRollups(ctx context.Context, db DB) error {
	tx, err := db.read(ctx)
	if err != nil {
		return fmt.Errorf("stats: %w", err)
	}
	fresh, err := upToDate(ctx, tx)
	tx.Rollback()
	if err != nil || fresh {
		return err
	}
	return Refresh(ctx, db)
}

// readGroups lists every group of the region and returns the group of
// each unit id.
func (p *Publication) readGroups(ctx context.Context, tx dbTx) (map[string]int, error) {
	type unit struct{ id, org, orgName, area, name string }
	rows, err := tx.QueryContext(ctx, `SELECT u.id, u.org_id, o.name, u.area_code, u.name FROM units u JOIN organisations o ON o.id = u.org_id`)
	if err != nil {
		return nil, fmt.Errorf("stats: publication: units: %w", err)
	}
	var us []unit
	for rows.Next() {
		var u unit
		if err := rows.Scan(&u.id, &u.org, &u.orgName, &u.area, &u.name); err != nil {
			rows.Close()
			return nil, fmt.Errorf("stats: publication: units: %w", err)
		}
		us = append(us, u)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("stats: publication: units: %w", err)
	}
	p.dims = map[Dim][2]int{}
	p.hidden = map[int][2]int{}
	p.groups = []pubGroup{{dim: ByTotal, key: TotalGroup, label: "Total", org: -1, muni: -1}}
	p.dims[ByTotal] = [2]int{0, 1}
	enum := func(d Dim, e *schema.Enumeration) {
		start := len(p.groups)
		for _, c := range e.Codes() {
			p.groups = append(p.groups, pubGroup{dim: d, key: c, label: e.Label(c, schema.English), org: -1, muni: -1})
		}
		p.dims[d] = [2]int{start, len(p.groups)}
	}
	enum(ByGender, schema.GenderEnum)
	enum(ByAgeBand, schema.AgeBandEnum)
	sort.Slice(us, func(i, j int) bool {
		if us[i].name != us[j].name {
			return us[i].name < us[j].name
		}
		return us[i].id < us[j].id
	})
	munis, orgs := map[string]string{}, map[string]string{}
	for _, u := range us {
		munis[u.area] = u.area
		orgs[u.org] = u.orgName
	}
	sorted := func(m map[string]string) []string {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			if m[keys[i]] != m[keys[j]] {
				return m[keys[i]] < m[keys[j]]
			}
			return keys[i] < keys[j]
		})
		return keys
	}
	unitStart := len(p.groups)
	muniStart := unitStart + len(us)
	orgStart := muniStart + len(munis)
	muniOf, orgOf := map[string]int{}, map[string]int{}
	for i, m := range sorted(munis) {
		muniOf[m] = muniStart + i
	}
	orgKeys := sorted(orgs)
	for i, o := range orgKeys {
		orgOf[o] = orgStart + i
	}
	unitGroup := map[string]int{}
	for _, u := range us {
		unitGroup[u.id] = len(p.groups)
		p.groups = append(p.groups, pubGroup{dim: ByUnit, key: u.id, label: u.name, org: orgOf[u.org], muni: muniOf[u.area]})
	}
	p.dims[ByUnit] = [2]int{unitStart, len(p.groups)}
	for _, m := range sorted(munis) {
		p.groups = append(p.groups, pubGroup{dim: ByMunicipality, key: m, label: m, org: -1, muni: -1})
	}
	p.dims[ByMunicipality] = [2]int{muniStart, len(p.groups)}
	for _, o := range orgKeys {
		p.groups = append(p.groups, pubGroup{dim: ByOrganisation, key: o, label: orgs[o], org: -1, muni: -1})
	}
	p.dims[ByOrganisation] = [2]int{orgStart, len(p.groups)}
	for _, o := range orgKeys {
		start := len(p.groups)
		for _, d := range []Dim{ByGender, ByAgeBand} {
			for _, c := range p.groups[p.dims[d][0]:p.dims[d][1]] {
				p.groups = append(p.groups, pubGroup{dim: d, key: c.key, org: orgOf[o], muni: -1})
			}
		}
		p.hidden[orgOf[o]] = [2]int{start, len(p.groups)}
	}
	return unitGroup, nil
}

// atom is the finest cell the publication counts in: a fragment, unit,
// gender and age band.
type atom struct {
	frag, unit, gender, age int32
}

// count reads the live records of the grid's days and counts every cell.
func (p *Publication) count(ctx context.Context, tx dbTx, unitGroup map[string]int, keys *keyCache) error {
	g := p.grid
	size := len(g.units) * len(p.groups)
	p.cells = map[Indicator]*cellTable{}
	for _, ind := range Indicators {
		p.cells[ind] = newCellTable(size, kindOf(ind) == magnitudeKind)
	}
	genderOf, ageOf := map[string]int32{}, map[string]int32{}
	for i, gr := range p.groups {
		switch {
		case gr.org >= 0 && gr.dim != ByUnit:
		case gr.dim == ByGender:
			genderOf[gr.key] = int32(i)
		case gr.dim == ByAgeBand:
			ageOf[gr.key] = int32(i)
		}
	}
	// up lists, for each fragment, the time units that contain it.
	up := make([][]int, g.fragments)
	for f := range up {
		up[f] = []int{f}
	}
	for t := g.fragments; t < len(g.units); t++ {
		u := g.units[t]
		for _, part := range u.parts {
			if part < g.fragments {
				up[part] = append(up[part], t)
			} else {
				for _, f := range g.units[part].parts {
					if f < g.fragments {
						up[f] = append(up[f], t)
					} else {
						for _, ff := range g.units[f].parts {
							up[ff] = append(up[ff], t)
						}
					}
				}
			}
		}
	}
	// groupsOf returns the groups an atom counts in.
	groupsOf := func(a atom, out []int) []int {
		ug := p.groups[a.unit]
		out = append(out[:0], 0, int(a.gender), int(a.age), int(a.unit), ug.muni, ug.org)
		h := p.hidden[ug.org]
		gd := p.dims[ByGender]
		ad := p.dims[ByAgeBand]
		out = append(out, h[0]+int(a.gender)-gd[0], h[0]+(gd[1]-gd[0])+int(a.age)-ad[0])
		return out
	}
	rows, err := tx.QueryContext(ctx, `SELECT f.kind, f.id, f.at, f.unit_id, f.gender, f.age_band, COALESCE(f.client_code, ''),
		f.syringes_out, f.needles_out, f.syringes_returned, f.doses, COALESCE(f.service, ''), f.attended
		FROM stats_facts f`+tx.d.notIndexed+`
		WHERE f.live = 1 AND f.at >= ? AND f.at < ?`, dayStart(g.firstDay), dayStart(g.endDay))
	if err != nil {
		return fmt.Errorf("stats: publication: records: %w", err)
	}
	defer rows.Close()
	var clientPairs []uint64 // atom index << 32 | client index
	atomIndex := map[atom]int{}
	var atomList []atom
	clients := map[string]int{}
	var clientKeys []uint32
	var gs []int
	var cells []int // the cells of the record in hand
	var id sql.RawBytes
	// place sets cells to those of a record of the unit, gender and age
	// band at the Unix millisecond at, and returns its atom; false for a
	// record outside the grid or the region.
	place := func(at int64, unit, gender, age string) (atom, bool) {
		ug, ok := unitGroup[unit]
		if !ok {
			return atom{}, false
		}
		gi, ok1 := genderOf[gender]
		ai, ok2 := ageOf[age]
		if !ok1 {
			gi = genderOf[string(schema.GenderNotStated)]
		}
		if !ok2 {
			ai = ageOf[string(schema.AgeNotStated)]
		}
		frag, ok := g.dayUnit[dayOf(at)]
		if !ok {
			return atom{}, false
		}
		a := atom{int32(frag), int32(ug), gi, ai}
		gs = groupsOf(a, gs)
		cells = cells[:0]
		for _, tu := range up[a.frag] {
			for _, gr := range gs {
				cells = append(cells, p.cell(tu, gr))
			}
		}
		return a, true
	}
	for rows.Next() {
		var f pubFact
		if err := rows.Scan(&f.kind, &id, &f.at, &f.unit, &f.gender, &f.age, &f.code, &f.syringesOut, &f.needlesOut,
			&f.syringesReturned, &f.doses, &f.service, &f.attended); err != nil {
			return fmt.Errorf("stats: publication: records: %w", err)
		}
		f.key = int64(keys.record(f.kind, id))
		if f.code != "" {
			f.clientKey = int64(keys.clients[f.code])
		}
		a, ok := place(f.at, f.unit, f.gender, f.age)
		if !ok {
			continue
		}
		key := uint32(f.key)
		org := int32(p.groups[a.unit].org + 1)
		count := func(i Indicator) {
			t := p.cells[i]
			if t == nil {
				return // a service category no longer listed
			}
			for _, c := range cells {
				t.n[c]++
				t.key[c] += key
				t.sole[c] = soleOf(t.sole[c], org)
			}
		}
		amount := func(i Indicator, v int64) {
			if v <= 0 {
				return
			}
			t := p.cells[i]
			for _, c := range cells {
				t.n[c] += v
				t.records[c]++
				t.key[c] += key
				t.top[c] = max(t.top[c], v)
				t.sole[c] = soleOf(t.sole[c], org)
			}
		}
		switch f.kind {
		case schema.KindContact:
			count(Contacts)
			if f.code != "" {
				ci, ok := clients[f.code]
				if !ok {
					ci = len(clientKeys)
					clients[f.code] = ci
					clientKeys = append(clientKeys, uint32(f.clientKey))
				}
				ai, ok := atomIndex[a]
				if !ok {
					ai = len(atomList)
					atomIndex[a] = ai
					atomList = append(atomList, a)
				}
				clientPairs = append(clientPairs, uint64(ai)<<32|uint64(ci))
			}
		case schema.KindSyringeExchange:
			amount(SyringesOut, f.syringesOut)
			amount(NeedlesOut, f.needlesOut)
			amount(SyringesReturned, f.syringesReturned)
		case schema.KindNaloxone:
			count(NaloxoneHandouts)
			amount(NaloxoneDoses, f.doses)
		case schema.KindReversal:
			count(Reversals)
		case schema.KindReferral:
			count(Referrals)
			count(ReferralsTo(schema.ServiceCategory(f.service)))
			if f.attended {
				count(ReferralsAttended)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("stats: publication: records: %w", err)
	}
	// Tests, vaccinations and deaths, from their own tables.
	health, err := readHealth(ctx, tx, dayStart(g.firstDay), dayStart(g.endDay), true, nil)
	if err != nil {
		return fmt.Errorf("stats: publication: %w", err)
	}
	for _, f := range health {
		a, ok := place(f.at, f.unit, f.gender, f.age)
		if !ok {
			continue
		}
		org := int32(p.groups[a.unit].org + 1)
		for _, i := range f.inds {
			t := p.cells[i]
			for _, c := range cells {
				t.n[c]++
				t.key[c] += f.key
				t.sole[c] = soleOf(t.sole[c], org)
			}
		}
		for _, m := range f.amounts {
			t := p.cells[m.ind]
			for _, c := range cells {
				t.n[c] += m.v
				t.records[c]++
				t.key[c] += f.key
				t.top[c] = max(t.top[c], m.v)
				t.sole[c] = soleOf(t.sole[c], org)
			}
		}
	}
	// Unique clients: the distinct codes of each cell.
	slices.Sort(clientPairs)
	clientPairs = slices.Compact(clientPairs)
	var cellPairs []uint64 // cell << 32 | client
	uc := p.cells[UniqueClients]
	for _, pair := range clientPairs {
		a := atomList[pair>>32]
		org := int32(p.groups[a.unit].org + 1)
		gs = groupsOf(a, gs)
		for _, tu := range up[a.frag] {
			for _, gr := range gs {
				c := p.cell(tu, gr)
				cellPairs = append(cellPairs, uint64(c)<<32|pair&0xffffffff)
				uc.sole[c] = soleOf(uc.sole[c], org)
			}
		}
	}
	slices.Sort(cellPairs)
	cellPairs = slices.Compact(cellPairs)
	for _, pair := range cellPairs {
		i := pair >> 32
		uc.n[i]++
		uc.key[i] += clientKeys[pair&0xffffffff]
	}
	return nil
}

// soleOf returns a cell's sole organisation (plus 1) after a record of
// organisation org (plus 1): org for the first, -1 once there are two.
func soleOf(sole, org int32) int32 {
	switch sole {
	case 0:
		return org
	case org:
		return sole
	}
	return -1
}

// perturb publishes every cell: counts by the perturbation table, sums
// whose contributing records plus their key's shift are at least k+2 by
// the magnitude table (sumShown), the others withheld.
func (p *Publication) perturb() {
	for ind, t := range p.cells {
		mag := kindOf(ind) == magnitudeKind
		for i := range t.n {
			switch {
			case !mag:
				t.value[i] = Perturb(t.n[i], t.key[i], p.K)
			case !sumShown(t.records[i], t.key[i], p.K):
				t.withheld[i] = true
			default:
				t.value[i] = PerturbSum(t.n[i], t.top[i], t.key[i])
			}
		}
	}
}

// address returns the address of a published cell: period, breakdown,
// group, indicator; the total is the same cell in every breakdown.
func (p *Publication) address(t, g int, ind Indicator) string {
	gr := p.groups[g]
	dim := string(gr.dim)
	if gr.dim == ByTotal {
		dim = "total"
	}
	return strings.Join([]string{p.grid.units[t].key, dim, gr.key, string(ind)}, "|")
}

// finalValue is a cell's value when its period was first published
// final: nil if it was withheld.
type finalValue struct {
	value *int64
}

func readFinals(ctx context.Context, tx dbTx) (map[string]finalValue, error) {
	rows, err := tx.QueryContext(ctx, `SELECT cell, value FROM report_finals`)
	if err != nil {
		return nil, fmt.Errorf("stats: publication: finals: %w", err)
	}
	defer rows.Close()
	out := map[string]finalValue{}
	for rows.Next() {
		var cell string
		var v sql.NullInt64
		if err := rows.Scan(&cell, &v); err != nil {
			return nil, fmt.Errorf("stats: publication: finals: %w", err)
		}
		f := finalValue{}
		if v.Valid {
			f.value = &v.Int64
		}
		out[cell] = f
	}
	return out, rows.Err()
}

// published reports whether the time unit and group are published.
func (p *Publication) published(t, g int) bool {
	return t >= p.grid.fragments && (p.groups[g].org < 0 || p.groups[g].dim == ByUnit)
}

// finalCell is a cell of a period final for the first time, with its
// value: nil if it is withheld.
type finalCell struct {
	addr  string
	value any
}

// newFinals marks the revised cells by finals, the cells of the periods
// first published final before, and returns the cells of the periods
// final for the first time.
func (p *Publication) newFinals(finals map[string]finalValue) []finalCell {
	var out []finalCell
	for t := p.grid.fragments; t < len(p.grid.units); t++ {
		if !p.final[t] {
			continue
		}
		for g := range p.groups {
			if !p.published(t, g) {
				continue
			}
			for _, ind := range Indicators {
				c := p.cells[ind]
				i := p.cell(t, g)
				addr := p.address(t, g, ind)
				if f, ok := finals[addr]; ok {
					c.revised[i] = c.withheld[i] != (f.value == nil) || (f.value != nil && *f.value != c.value[i])
					continue
				}
				fc := finalCell{addr: addr}
				if !c.withheld[i] {
					fc.value = c.value[i]
				}
				out = append(out, fc)
			}
		}
	}
	return out
}

// recordFinals records cells in tx, each if absent, and reports whether
// all were.
func recordFinals(ctx context.Context, tx dbTx, cells []finalCell) (bool, error) {
	if len(cells) == 0 {
		return true, nil
	}
	rows := make([][]any, len(cells))
	for i, c := range cells {
		rows[i] = []any{c.addr, c.value}
	}
	all, err := tx.insertAbsent(ctx, "report_finals", "cell, value", rows)
	if err != nil {
		return false, fmt.Errorf("stats: publication: finals: %w", err)
	}
	return all, nil
}
