package replica_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/brygga/brygga/server/pgstore"
	"github.com/brygga/brygga/server/pgstore/pgtest"
	"github.com/brygga/brygga/sync/replica"
	"github.com/brygga/brygga/sync/wire"
)

// TestConvergencePostgres runs the schedules of TestConvergence against
// three server instances on one PostgreSQL database, each with its own
// pool of connections, as three bryggad behind a load balancer: every
// push and pull of the schedule goes to one of them at random, so that a
// device's pushes, their retries and its pulls land on different
// instances, and delayed and duplicated deliveries on others again. The
// same checks hold: every device holds exactly the server's state of its
// scope, and the server holds the effect of every accepted mutation
// exactly once.
//
// BRYGGA_PG_SCHEDULES sets the number of schedules (default 100, 20 with
// -short), BRYGGA_SEED the first seed; each schedule gets a database of
// its own, copied from a migrated template.
func TestConvergencePostgres(t *testing.T) {
	first, n := scheduleSeeds("BRYGGA_PG_SCHEDULES", 100, 20)
	tmpl := newTemplates(t)
	pg := newPGTemplate(t, tmpl.world)
	for seed := first; seed < first+uint64(n); seed++ {
		if err := runSchedule(t, tmpl, pg.open, seed); err != nil {
			t.Fatalf("schedule %d failed: %v\nreplay: BRYGGA_SEED=%d BRYGGA_PG_SCHEDULES=1 go test -run TestConvergencePostgres ./sync/replica", seed, err, seed)
		}
	}
}

// pgTemplate is a migrated PostgreSQL database holding the world's
// reference data, which each schedule copies.
type pgTemplate struct {
	admin string // the server's URL
	name  string // the template database's name
}

func newPGTemplate(t *testing.T, w world) *pgTemplate {
	ctx := context.Background()
	u := pgtest.URL(t)
	st, err := pgstore.Open(ctx, u, pgstore.Config{Now: newTestClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutReference(ctx, w.reference()...); err != nil {
		t.Fatal(err)
	}
	st.Close()
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return &pgTemplate{admin: pgtest.Server(), name: strings.TrimPrefix(parsed.Path, "/")}
}

// open copies the template into a new database and opens three instances
// on it.
func (p *pgTemplate) open(ctx context.Context, _ string, clock *testClock, seed uint64) (simServer, error) {
	admin, err := pgx.Connect(ctx, p.admin)
	if err != nil {
		return nil, err
	}
	defer admin.Close(ctx)
	name := fmt.Sprintf("%s_%d", p.name, seed)
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+name+` TEMPLATE `+p.name); err != nil {
		return nil, err
	}
	u, err := url.Parse(p.admin)
	if err != nil {
		return nil, err
	}
	u.Path = "/" + name
	in := &instances{rng: rand.New(rand.NewPCG(seed, 3)), admin: p.admin, name: name, now: clock.Now}
	for range 3 {
		st, err := pgstore.Open(ctx, u.String(), pgstore.Config{Now: clock.Now})
		if err != nil {
			in.Close()
			return nil, err
		}
		in.stores = append(in.stores, st)
	}
	return in, nil
}

// instances are server instances on one database; each push and pull
// goes to one of them at random.
type instances struct {
	stores []*pgstore.Store
	rng    *rand.Rand
	admin  string
	name   string
	now    func() time.Time
}

func (in *instances) pick() *pgstore.Store { return in.stores[in.rng.IntN(len(in.stores))] }

func (in *instances) Push(ctx context.Context, device uuid.UUID, req *wire.PushRequest) (*wire.PushResponse, error) {
	return in.pick().Push(ctx, device, req)
}

func (in *instances) Pull(ctx context.Context, device uuid.UUID, req *wire.PullRequest) (*wire.PullResponse, error) {
	return in.pick().Pull(ctx, device, req)
}

// RegisterDevice registers a device as enrolment does, without the
// enrolment code and key, which the schedules do not exercise.
func (in *instances) RegisterDevice(ctx context.Context, id, unit uuid.UUID) (*replica.EnrolledDevice, error) {
	u, err := url.Parse(in.admin)
	if err != nil {
		return nil, err
	}
	u.Path = "/" + in.name
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `INSERT INTO devices (id, unit_id, enrolled_at) VALUES ($1, $2, $3)`, id, unit, in.now().UTC()); err != nil {
		return nil, err
	}
	return in.pick().LookupDevice(ctx, id)
}

func (in *instances) LookupDevice(ctx context.Context, id uuid.UUID) (*replica.EnrolledDevice, error) {
	return in.pick().LookupDevice(ctx, id)
}

func (in *instances) ScopeRows(ctx context.Context, unit uuid.UUID) ([]*replica.Row, error) {
	return in.pick().ScopeRows(ctx, unit)
}

// Close closes the instances and drops their database.
func (in *instances) Close() error {
	for _, st := range in.stores {
		st.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, in.admin)
	if err != nil {
		return err
	}
	defer admin.Close(ctx)
	_, err = admin.Exec(ctx, `DROP DATABASE IF EXISTS `+in.name+` WITH (FORCE)`)
	return err
}
