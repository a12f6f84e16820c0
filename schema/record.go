package schema

import (
	"time"

	"github.com/google/uuid"
)

// Kind names a record type. It is also the name of the record's table and
// its name on the wire.
type Kind string

// The record kinds devices write.
const (
	KindClient          Kind = "clients"
	KindContact         Kind = "contacts"
	KindSyringeExchange Kind = "syringe_exchanges"
	KindNaloxone        Kind = "naloxone_handouts"
	KindReversal        Kind = "reversals"
	KindReferral        Kind = "referrals"
)

// The reference data kinds the server writes and devices receive.
const (
	KindOrganisation Kind = "organisations"
	KindUnit         Kind = "units"
	KindStaff        Kind = "staff"
	KindService      Kind = "services"
)

// Record is implemented by every record type, field records and reference
// data alike.
type Record interface {
	// Kind returns the record's kind.
	Kind() Kind
	// RecordID returns the record's id.
	RecordID() uuid.UUID
	// Fields returns the record's fields in column order, each pointing into
	// the record, so that a codec can read and set them without reflection.
	Fields() []Field
	// Validate checks every field and rule and returns the first violation
	// as a *FieldError. now bounds times in the future.
	Validate(now time.Time) error
}

// Header is what every field record carries: who wrote it, where and when,
// and whether it has been voided. A record is never deleted: a mistaken one
// is voided, which is an ordinary versioned change.
type Header struct {
	// ID is a UUIDv7 generated on the device that created the record.
	ID uuid.UUID `json:"id"`
	// UnitID is the unit that owns the record. Row-level data never leaves
	// the owning unit's organisation.
	UnitID uuid.UUID `json:"unit_id"`
	// DeviceID is the device that created the record.
	DeviceID uuid.UUID `json:"device_id"`
	// StaffID is the staff member who created the record.
	StaffID uuid.UUID `json:"staff_id"`
	// OccurredAt is when it happened, as the worker entered it, in UTC with
	// millisecond precision. It is not a sync clock.
	OccurredAt time.Time `json:"occurred_at"`
	// Voided marks a record entered by mistake.
	Voided bool `json:"voided"`
}

// RecordID returns the record's id.
func (h *Header) RecordID() uuid.UUID { return h.ID }

// RecordHeader returns the header itself; field records have it by
// embedding Header.
func (h *Header) RecordHeader() *Header { return h }

// HeaderOf returns the header of a field record, or nil for reference data.
func HeaderOf(r Record) *Header {
	if h, ok := r.(interface{ RecordHeader() *Header }); ok {
		return h.RecordHeader()
	}
	return nil
}

// appendFields appends the header's fields to dst.
func (h *Header) appendFields(dst []Field) []Field {
	return append(dst,
		idField("id", &h.ID),
		idField("unit_id", &h.UnitID).immutable(),
		idField("device_id", &h.DeviceID).immutable(),
		idField("staff_id", &h.StaffID).immutable(),
		timeField("occurred_at", &h.OccurredAt),
		boolField("voided", &h.Voided),
	)
}

// Client is a pseudonymous client: a random code on a card the person keeps
// and the coarse attributes statistics need. Either the birth year or the
// age band may be given, not both.
type Client struct {
	Header
	Code      ClientCode `json:"code"`
	Gender    Gender     `json:"gender"`
	BirthYear int        `json:"birth_year,omitempty"`
	AgeBand   AgeBand    `json:"age_band,omitempty"`
}

// Contact is one visit or encounter (besök). ClientCode is empty for an
// anonymous contact; Gender and AgeBand are recorded on the contact itself
// so that statistics of anonymous contacts and of clients whose attributes
// change stay true to the time of the contact.
type Contact struct {
	Header
	ClientCode ClientCode `json:"client_code,omitempty"`
	Gender     Gender     `json:"gender"`
	AgeBand    AgeBand    `json:"age_band"`
	Setting    Setting    `json:"setting"`
	// AreaCode is the four-digit Swedish municipality code (kommunkod)
	// where the contact happened.
	AreaCode  string    `json:"area_code"`
	Substance Substance `json:"substance,omitempty"`
}

// SyringeExchange is what was handed out and taken back at a contact.
type SyringeExchange struct {
	Header
	ContactID        uuid.UUID `json:"contact_id"`
	SyringesOut      int       `json:"syringes_out"`
	NeedlesOut       int       `json:"needles_out"`
	SyringesReturned int       `json:"syringes_returned"`
	// Supplies counts other supplies by Supply code.
	Supplies Supplies `json:"supplies,omitempty"`
}

// NaloxoneHandout is naloxone given out at a contact, counted in doses: a
// kit with two doses is two.
type NaloxoneHandout struct {
	Header
	ContactID     uuid.UUID      `json:"contact_id"`
	Doses         int            `json:"doses"`
	TrainingGiven bool           `json:"training_given"`
	Reason        NaloxoneReason `json:"reason"`
}

// Reversal is an overdose reversal reported to the team.
type Reversal struct {
	Header
	ContactID    uuid.UUID       `json:"contact_id,omitempty"`
	NaloxoneUsed bool            `json:"naloxone_used"`
	DosesUsed    int             `json:"doses_used"`
	EMSCalled    bool            `json:"ems_called"`
	Outcome      ReversalOutcome `json:"outcome"`
}

// Referral is a referral (hänvisning) from the owning unit to another unit,
// most often of another organisation (a municipality's outreach team to the
// region's addiction clinic), possibly of its own. The receiving unit
// updates Status; Reopened counts
// explicit reopenings, the only way a status moves back.
type Referral struct {
	Header
	ContactID  uuid.UUID       `json:"contact_id,omitempty"`
	ClientCode ClientCode      `json:"client_code,omitempty"`
	Service    ServiceCategory `json:"service"`
	ToUnitID   uuid.UUID       `json:"to_unit_id"`
	Status     ReferralStatus  `json:"status"`
	Reopened   int             `json:"reopened"`
}

// Organisation is a municipality, region or NGO that runs units.
type Organisation struct {
	ID      uuid.UUID `json:"id"`
	OrgKind OrgKind   `json:"org_kind"`
	// Name is the organisation's public name, for example "Region
	// Jämtland Härjedalen"; it names an organisation, never a person.
	Name string `json:"name"`
	// RegionCode is the two-digit county code (länskod).
	RegionCode string `json:"region_code"`
	Active     bool   `json:"active"`
}

// Unit is a team or site of an organisation (enhet): the unit that owns
// field records and receives referrals.
type Unit struct {
	ID       uuid.UUID `json:"id"`
	OrgID    uuid.UUID `json:"org_id"`
	Name     string    `json:"name"`
	AreaCode string    `json:"area_code"`
	Active   bool      `json:"active"`
}

// Staff is a staff member, for attribution only: a role and a unit,
// identified by a system id, never by name.
type Staff struct {
	ID     uuid.UUID `json:"id"`
	UnitID uuid.UUID `json:"unit_id"`
	Role   StaffRole `json:"role"`
	Active bool      `json:"active"`
}

// Service is an entry of the service catalogue: a unit that receives
// referrals of a category.
type Service struct {
	ID       uuid.UUID       `json:"id"`
	UnitID   uuid.UUID       `json:"unit_id"`
	Category ServiceCategory `json:"category"`
	Active   bool            `json:"active"`
}

// Kind methods.
func (*Client) Kind() Kind          { return KindClient }
func (*Contact) Kind() Kind         { return KindContact }
func (*SyringeExchange) Kind() Kind { return KindSyringeExchange }
func (*NaloxoneHandout) Kind() Kind { return KindNaloxone }
func (*Reversal) Kind() Kind        { return KindReversal }
func (*Referral) Kind() Kind        { return KindReferral }
func (*Organisation) Kind() Kind    { return KindOrganisation }
func (*Unit) Kind() Kind            { return KindUnit }
func (*Staff) Kind() Kind           { return KindStaff }
func (*Service) Kind() Kind         { return KindService }

// RecordID methods of reference data.
func (o *Organisation) RecordID() uuid.UUID { return o.ID }
func (u *Unit) RecordID() uuid.UUID         { return u.ID }
func (s *Staff) RecordID() uuid.UUID        { return s.ID }
func (s *Service) RecordID() uuid.UUID      { return s.ID }

// MaxFields is the most fields a record has.
const MaxFields = 12

// AppendFields appends r.Fields() to dst: with room in dst for them, which
// MaxFields is, without allocating.
func AppendFields(dst []Field, r Record) []Field {
	if a, ok := r.(interface{ appendFields([]Field) []Field }); ok {
		return a.appendFields(dst)
	}
	return append(dst, r.Fields()...)
}

// Fields methods. Each appends to dst in appendFields, which Validate
// calls with an array of its own, so that a check allocates nothing.

func (c *Client) Fields() []Field { return c.appendFields(make([]Field, 0, MaxFields)) }

func (c *Client) appendFields(dst []Field) []Field {
	return append(c.Header.appendFields(dst),
		codeField("code", &c.Code).immutable(),
		enumField("gender", (*string)(&c.Gender), GenderEnum),
		intField("birth_year", &c.BirthYear).optional(),
		enumField("age_band", (*string)(&c.AgeBand), AgeBandEnum).optional(),
	)
}

func (c *Contact) Fields() []Field { return c.appendFields(make([]Field, 0, MaxFields)) }

func (c *Contact) appendFields(dst []Field) []Field {
	return append(c.Header.appendFields(dst),
		codeField("client_code", &c.ClientCode).optional(),
		enumField("gender", (*string)(&c.Gender), GenderEnum),
		enumField("age_band", (*string)(&c.AgeBand), AgeBandEnum),
		enumField("setting", (*string)(&c.Setting), SettingEnum),
		textField("area_code", &c.AreaCode),
		enumField("substance", (*string)(&c.Substance), SubstanceEnum).optional(),
	)
}

func (s *SyringeExchange) Fields() []Field { return s.appendFields(make([]Field, 0, MaxFields)) }

func (s *SyringeExchange) appendFields(dst []Field) []Field {
	return append(s.Header.appendFields(dst),
		idField("contact_id", &s.ContactID).immutable(),
		intField("syringes_out", &s.SyringesOut),
		intField("needles_out", &s.NeedlesOut),
		intField("syringes_returned", &s.SyringesReturned),
		suppliesField("supplies", &s.Supplies).optional(),
	)
}

func (n *NaloxoneHandout) Fields() []Field { return n.appendFields(make([]Field, 0, MaxFields)) }

func (n *NaloxoneHandout) appendFields(dst []Field) []Field {
	return append(n.Header.appendFields(dst),
		idField("contact_id", &n.ContactID).immutable(),
		intField("doses", &n.Doses),
		boolField("training_given", &n.TrainingGiven),
		enumField("reason", (*string)(&n.Reason), NaloxoneReasonEnum),
	)
}

func (r *Reversal) Fields() []Field { return r.appendFields(make([]Field, 0, MaxFields)) }

func (r *Reversal) appendFields(dst []Field) []Field {
	return append(r.Header.appendFields(dst),
		idField("contact_id", &r.ContactID).immutable().optional(),
		boolField("naloxone_used", &r.NaloxoneUsed),
		intField("doses_used", &r.DosesUsed),
		boolField("ems_called", &r.EMSCalled),
		enumField("outcome", (*string)(&r.Outcome), ReversalOutcomeEnum),
	)
}

func (r *Referral) Fields() []Field { return r.appendFields(make([]Field, 0, MaxFields)) }

func (r *Referral) appendFields(dst []Field) []Field {
	return append(r.Header.appendFields(dst),
		idField("contact_id", &r.ContactID).immutable().optional(),
		codeField("client_code", &r.ClientCode).optional(),
		enumField("service", (*string)(&r.Service), ServiceCategoryEnum),
		idField("to_unit_id", &r.ToUnitID).immutable(),
		enumField("status", (*string)(&r.Status), ReferralStatusEnum).withMerge(MergeStatus),
		intField("reopened", &r.Reopened).withMerge(MergeCounter),
	)
}

func (o *Organisation) Fields() []Field { return o.appendFields(make([]Field, 0, 5)) }

func (o *Organisation) appendFields(dst []Field) []Field {
	return append(dst,
		idField("id", &o.ID),
		enumField("org_kind", (*string)(&o.OrgKind), OrgKindEnum),
		textField("name", &o.Name),
		textField("region_code", &o.RegionCode),
		boolField("active", &o.Active),
	)
}

func (u *Unit) Fields() []Field { return u.appendFields(make([]Field, 0, 5)) }

func (u *Unit) appendFields(dst []Field) []Field {
	return append(dst,
		idField("id", &u.ID),
		idField("org_id", &u.OrgID).immutable(),
		textField("name", &u.Name),
		textField("area_code", &u.AreaCode),
		boolField("active", &u.Active),
	)
}

func (s *Staff) Fields() []Field { return s.appendFields(make([]Field, 0, 4)) }

func (s *Staff) appendFields(dst []Field) []Field {
	return append(dst,
		idField("id", &s.ID),
		idField("unit_id", &s.UnitID).immutable(),
		enumField("role", (*string)(&s.Role), StaffRoleEnum),
		boolField("active", &s.Active),
	)
}

func (s *Service) Fields() []Field { return s.appendFields(make([]Field, 0, 4)) }

func (s *Service) appendFields(dst []Field) []Field {
	return append(dst,
		idField("id", &s.ID),
		idField("unit_id", &s.UnitID).immutable(),
		enumField("category", (*string)(&s.Category), ServiceCategoryEnum),
		boolField("active", &s.Active),
	)
}

// Version is the version of the data model as it crosses the network. It
// changes when a record type gains, loses or changes a field; a device and
// the server must agree on it to sync. Version 2 added infection tests,
// vaccinations and deaths, which a device of version 1 could not store.
const Version = 2
