package schema

import (
	"errors"
	"fmt"
	"sort"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// ErrInvalid is matched, with errors.Is, by every *FieldError.
var ErrInvalid = errors.New("invalid record")

// Rule names the rule a field broke. Rules are stable codes that clients
// may branch on and show.
type Rule string

// Rules.
const (
	RuleRequired     Rule = "required"      // a required field is missing, empty or null
	RuleType         Rule = "type"          // the value has the wrong JSON type or format
	RuleEnum         Rule = "enum"          // the code is not one of the enumeration's codes
	RuleRange        Rule = "range"         // a number is out of its allowed range
	RuleFormat       Rule = "format"        // a text does not have its required form
	RuleTime         Rule = "time"          // a time is before 2020 or too far in the future
	RuleClientCode   Rule = "client_code"   // a client code is malformed or its check character is wrong
	RuleIDVersion    Rule = "id_version"    // a record id is not a UUIDv7
	RuleExclusive    Rule = "exclusive"     // two fields that exclude each other are both set
	RuleEmpty        Rule = "empty"         // the record records nothing
	RuleSameUnit     Rule = "same_unit"     // a referral to the referring unit itself
	RuleConsistency  Rule = "consistency"   // fields contradict each other
	RuleImmutable    Rule = "immutable"     // a change to a field that may not change
	RuleUnknownField Rule = "unknown_field" // a field the record type does not have
	RuleTransition   Rule = "transition"    // a status that may not follow the current one
)

// FieldError is a violation of a rule by one field of a record. It matches
// ErrInvalid with errors.Is.
type FieldError struct {
	Kind    Kind   `json:"kind,omitempty"`
	Field   string `json:"field"`
	Rule    Rule   `json:"rule"`
	Message string `json:"message"`
}

// Error returns "kind.field: rule: message".
func (e *FieldError) Error() string {
	name := e.Field
	if e.Kind != "" {
		name = string(e.Kind) + "." + e.Field
	}
	return fmt.Sprintf("%s: %s: %s", name, e.Rule, e.Message)
}

// Is reports whether target is ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// Limits of values. They are generous for real work (secondary
// distribution hands out syringes by the hundred) and catch typing errors
// such as an extra zero or three.
const (
	MaxItems     = 5000 // syringes, needles, returns and each supply per exchange
	MaxDoses     = 50   // naloxone doses per handout or reversal
	MaxReopened  = 1000 // reopenings of one referral
	MaxNameRunes = 120  // an organisation's or unit's name
	MaxFuture    = 24 * time.Hour
)

// Earliest is the earliest time a record may say it happened.
var Earliest = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

type checker struct {
	kind Kind
	err  *FieldError
}

func (c *checker) fail(field string, rule Rule, format string, args ...any) {
	if c.err == nil {
		c.err = &FieldError{Kind: c.kind, Field: field, Rule: rule, Message: fmt.Sprintf(format, args...)}
	}
}

func (c *checker) result() error {
	if c.err == nil {
		return nil
	}
	return c.err
}

// fields checks what every field's description implies: presence, enum
// membership, client-code form and time bounds.
func (c *checker) fields(fs []Field, now time.Time) {
	for _, f := range fs {
		if f.IsZero() {
			if !f.Optional && f.Type != TypeInt && f.Type != TypeBool {
				c.fail(f.Name, RuleRequired, "is required")
			}
			continue
		}
		switch f.Type {
		case TypeEnum:
			if code := *f.ptr.(*string); !f.Enum.Has(code) {
				c.fail(f.Name, RuleEnum, "%q is not a %s code", code, f.Enum.Name)
			}
		case TypeCode:
			if code := *f.ptr.(*ClientCode); !code.Valid() {
				c.fail(f.Name, RuleClientCode, "%q is not a valid client code in canonical form (XXXX-XXXX-C)", string(code))
			}
		case TypeTime:
			t := *f.ptr.(*time.Time)
			if t.Before(Earliest) {
				c.fail(f.Name, RuleTime, "%s is before %s", t.Format(TimeLayout), Earliest.Format("2006-01-02"))
			} else if t.After(now.Add(MaxFuture)) {
				c.fail(f.Name, RuleTime, "%s is more than 24 hours in the future", t.Format(TimeLayout))
			}
		}
	}
}

func (c *checker) rangeInt(field string, n, lo, hi int) {
	if n < lo || n > hi {
		c.fail(field, RuleRange, "%d is outside %d..%d", n, lo, hi)
	}
}

func (c *checker) digits(field, s string, n int) {
	if len(s) != n {
		c.fail(field, RuleFormat, "want %d digits, got %q", n, s)
		return
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			c.fail(field, RuleFormat, "want %d digits, got %q", n, s)
			return
		}
	}
}

func (c *checker) name(field, s string) {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > MaxNameRunes {
		c.fail(field, RuleFormat, "want at most %d characters of valid UTF-8", MaxNameRunes)
		return
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			c.fail(field, RuleFormat, "may not contain control characters")
			return
		}
	}
}

func (c *checker) header(h *Header) {
	if h.ID != uuid.Nil && h.ID.Version() != 7 {
		c.fail("id", RuleIDVersion, "want a UUIDv7, got version %d", h.ID.Version())
	}
}

// Validate checks the client.
func (r *Client) Validate(now time.Time) error {
	c := checker{kind: r.Kind()}
	c.header(&r.Header)
	var buf [MaxFields]Field
	c.fields(r.appendFields(buf[:0]), now)
	if r.BirthYear != 0 {
		c.rangeInt("birth_year", r.BirthYear, now.Year()-110, now.Year()-10)
		if r.AgeBand != "" {
			c.fail("age_band", RuleExclusive, "give birth_year or age_band, not both")
		}
	}
	return c.result()
}

// Validate checks the contact.
func (r *Contact) Validate(now time.Time) error {
	c := checker{kind: r.Kind()}
	c.header(&r.Header)
	var buf [MaxFields]Field
	c.fields(r.appendFields(buf[:0]), now)
	if r.AreaCode != "" {
		c.digits("area_code", r.AreaCode, 4)
	}
	return c.result()
}

// Validate checks the syringe exchange.
func (r *SyringeExchange) Validate(now time.Time) error {
	c := checker{kind: r.Kind()}
	c.header(&r.Header)
	var buf [MaxFields]Field
	c.fields(r.appendFields(buf[:0]), now)
	c.rangeInt("syringes_out", r.SyringesOut, 0, MaxItems)
	c.rangeInt("needles_out", r.NeedlesOut, 0, MaxItems)
	c.rangeInt("syringes_returned", r.SyringesReturned, 0, MaxItems)
	total := r.SyringesOut + r.NeedlesOut + r.SyringesReturned
	for _, o := range SupplyEnum.Options { // a fixed order: the first error is deterministic
		if n, ok := r.Supplies[Supply(o.Code)]; ok {
			c.rangeInt("supplies."+o.Code, n, 0, MaxItems)
			total += n
		}
	}
	unknown := make([]string, 0)
	for s := range r.Supplies {
		if !SupplyEnum.Has(string(s)) {
			unknown = append(unknown, string(s))
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		c.fail("supplies", RuleEnum, "%q is not a supply code", unknown[0])
	}
	if total == 0 {
		c.fail("syringes_out", RuleEmpty, "an exchange must hand out or take back something")
	}
	return c.result()
}

// Validate checks the naloxone handout.
func (r *NaloxoneHandout) Validate(now time.Time) error {
	c := checker{kind: r.Kind()}
	c.header(&r.Header)
	var buf [MaxFields]Field
	c.fields(r.appendFields(buf[:0]), now)
	c.rangeInt("doses", r.Doses, 1, MaxDoses)
	return c.result()
}

// Validate checks the reversal.
func (r *Reversal) Validate(now time.Time) error {
	c := checker{kind: r.Kind()}
	c.header(&r.Header)
	var buf [MaxFields]Field
	c.fields(r.appendFields(buf[:0]), now)
	c.rangeInt("doses_used", r.DosesUsed, 0, MaxDoses)
	if !r.NaloxoneUsed && r.DosesUsed > 0 {
		c.fail("doses_used", RuleConsistency, "doses used given but naloxone_used is false")
	}
	return c.result()
}

// Validate checks the referral. It cannot know whether the receiving unit
// exists; the server checks that against its reference data.
func (r *Referral) Validate(now time.Time) error {
	c := checker{kind: r.Kind()}
	c.header(&r.Header)
	var buf [MaxFields]Field
	c.fields(r.appendFields(buf[:0]), now)
	if r.ToUnitID != uuid.Nil && r.ToUnitID == r.UnitID {
		c.fail("to_unit_id", RuleSameUnit, "a referral goes to another unit than the referring one")
	}
	c.rangeInt("reopened", r.Reopened, 0, MaxReopened)
	return c.result()
}

// Validate checks the organisation.
func (r *Organisation) Validate(now time.Time) error {
	c := checker{kind: r.Kind()}
	var buf [MaxFields]Field
	c.fields(r.appendFields(buf[:0]), now)
	c.name("name", r.Name)
	if r.RegionCode != "" {
		c.digits("region_code", r.RegionCode, 2)
	}
	return c.result()
}

// Validate checks the unit.
func (r *Unit) Validate(now time.Time) error {
	c := checker{kind: r.Kind()}
	var buf [MaxFields]Field
	c.fields(r.appendFields(buf[:0]), now)
	c.name("name", r.Name)
	if r.AreaCode != "" {
		c.digits("area_code", r.AreaCode, 4)
	}
	return c.result()
}

// Validate checks the staff member.
func (r *Staff) Validate(now time.Time) error {
	c := checker{kind: r.Kind()}
	var buf [MaxFields]Field
	c.fields(r.appendFields(buf[:0]), now)
	return c.result()
}

// Validate checks the service.
func (r *Service) Validate(now time.Time) error {
	c := checker{kind: r.Kind()}
	var buf [MaxFields]Field
	c.fields(r.appendFields(buf[:0]), now)
	return c.result()
}
