package schema

import "sort"

// Lang selects the language of a label.
type Lang string

// The languages every label exists in.
const (
	Swedish Lang = "sv"
	English Lang = "en"
)

// Option is one value of an enumeration: its stable wire code and its labels.
// Codes never change once released; labels may be reworded.
type Option struct {
	Code string `json:"code"`
	SV   string `json:"sv"`
	EN   string `json:"en"`
}

// Label returns the option's label in lang, English if lang is unknown.
func (o Option) Label(lang Lang) string {
	if lang == Swedish {
		return o.SV
	}
	return o.EN
}

// Enumeration is a named, ordered set of options, as published to devices and
// dashboards with the reference data.
type Enumeration struct {
	Name    string   `json:"name"`
	Options []Option `json:"options"`
	index   map[string]int
}

func newEnumeration(name string, options ...Option) *Enumeration {
	e := &Enumeration{Name: name, Options: options, index: make(map[string]int, len(options))}
	for i, o := range options {
		if _, dup := e.index[o.Code]; dup {
			panic("schema: duplicate code " + o.Code + " in " + name)
		}
		e.index[o.Code] = i
	}
	registry[name] = e
	return e
}

// Has reports whether code is one of the enumeration's codes.
func (e *Enumeration) Has(code string) bool {
	_, ok := e.index[code]
	return ok
}

// Option returns the option with the given code.
func (e *Enumeration) Option(code string) (Option, bool) {
	i, ok := e.index[code]
	if !ok {
		return Option{}, false
	}
	return e.Options[i], true
}

// Label returns the label of code in lang, or code itself if it is unknown.
func (e *Enumeration) Label(code string, lang Lang) string {
	if o, ok := e.Option(code); ok {
		return o.Label(lang)
	}
	return code
}

// Codes returns the codes in their defined order.
func (e *Enumeration) Codes() []string {
	codes := make([]string, len(e.Options))
	for i, o := range e.Options {
		codes[i] = o.Code
	}
	return codes
}

var registry = map[string]*Enumeration{}

// Enumerations returns every enumeration of the model, sorted by name. The
// result is shared: callers must not modify it.
func Enumerations() []*Enumeration {
	all := make([]*Enumeration, 0, len(registry))
	for _, e := range registry {
		all = append(all, e)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	return all
}

// Gender is a client's gender as the client states it.
type Gender string

// Genders.
const (
	GenderWoman     Gender = "woman"
	GenderMan       Gender = "man"
	GenderOther     Gender = "other"
	GenderNotStated Gender = "not_stated"
)

// GenderEnum lists the genders.
var GenderEnum = newEnumeration("gender",
	Option{"woman", "Kvinna", "Woman"},
	Option{"man", "Man", "Man"},
	Option{"other", "Annat", "Other"},
	Option{"not_stated", "Ej angivet", "Not stated"},
)

// AgeBand is a coarse age group used for statistics. The bands are cut so
// that the youth view (13-29, as in SKR's action plan) is a union of bands.
type AgeBand string

// Age bands.
const (
	AgeUnder18   AgeBand = "under_18"
	Age18to24    AgeBand = "18_24"
	Age25to29    AgeBand = "25_29"
	Age30to39    AgeBand = "30_39"
	Age40to49    AgeBand = "40_49"
	Age50to64    AgeBand = "50_64"
	Age65Plus    AgeBand = "65_plus"
	AgeNotStated AgeBand = "not_stated"
)

// AgeBandEnum lists the age bands, youngest first.
var AgeBandEnum = newEnumeration("age_band",
	Option{"under_18", "Under 18 år", "Under 18"},
	Option{"18_24", "18-24 år", "18-24"},
	Option{"25_29", "25-29 år", "25-29"},
	Option{"30_39", "30-39 år", "30-39"},
	Option{"40_49", "40-49 år", "40-49"},
	Option{"50_64", "50-64 år", "50-64"},
	Option{"65_plus", "65 år och äldre", "65 and over"},
	Option{"not_stated", "Ej angivet", "Not stated"},
)

// AgeBandOf returns the age band of someone born in birthYear, in the year of
// at. Age is counted as at.Year() - birthYear, the only age a birth year
// gives.
func AgeBandOf(birthYear int, year int) AgeBand {
	age := year - birthYear
	switch {
	case age < 18:
		return AgeUnder18
	case age <= 24:
		return Age18to24
	case age <= 29:
		return Age25to29
	case age <= 39:
		return Age30to39
	case age <= 49:
		return Age40to49
	case age <= 64:
		return Age50to64
	default:
		return Age65Plus
	}
}

// Setting is where a contact took place.
type Setting string

// Settings.
const (
	SettingStreet     Setting = "street"
	SettingFixedSite  Setting = "fixed_site"
	SettingMobileUnit Setting = "mobile_unit"
	SettingShelter    Setting = "shelter"
	SettingHomeVisit  Setting = "home_visit"
	SettingOther      Setting = "other"
)

// SettingEnum lists the contact settings.
var SettingEnum = newEnumeration("setting",
	Option{"street", "Uppsökande på gatan", "Street outreach"},
	Option{"fixed_site", "Fast mottagning", "Fixed site"},
	Option{"mobile_unit", "Mobil enhet", "Mobile unit"},
	Option{"shelter", "Härbärge eller boende", "Shelter or housing"},
	Option{"home_visit", "Hembesök", "Home visit"},
	Option{"other", "Annan plats", "Other"},
)

// Supply is an injection or safer-use supply other than syringes and
// needles, counted per piece.
type Supply string

// Supplies.
const (
	SupplySwabs           Supply = "swabs"
	SupplyFilters         Supply = "filters"
	SupplyCookers         Supply = "cookers"
	SupplyWater           Supply = "water"
	SupplySharpsContainer Supply = "sharps_container"
	SupplyFoil            Supply = "foil"
	SupplyCondoms         Supply = "condoms"
	SupplyTestStrips      Supply = "test_strips"
)

// SupplyEnum lists the supplies.
var SupplyEnum = newEnumeration("supply",
	Option{"swabs", "Spritsuddar", "Alcohol swabs"},
	Option{"filters", "Filter", "Filters"},
	Option{"cookers", "Kokkärl", "Cookers"},
	Option{"water", "Sterilt vatten", "Sterile water"},
	Option{"sharps_container", "Kanylburk", "Sharps container"},
	Option{"foil", "Folie", "Foil"},
	Option{"condoms", "Kondomer", "Condoms"},
	Option{"test_strips", "Teststickor för fentanyl", "Fentanyl test strips"},
)

// NaloxoneReason is why naloxone was handed out.
type NaloxoneReason string

// Naloxone reasons.
const (
	NaloxoneFirstKit NaloxoneReason = "first_kit"
	NaloxoneUsed     NaloxoneReason = "replacement_used"
	NaloxoneLost     NaloxoneReason = "replacement_lost"
	NaloxoneExpired  NaloxoneReason = "replacement_expired"
)

// NaloxoneReasonEnum lists the reasons for a naloxone handout.
var NaloxoneReasonEnum = newEnumeration("naloxone_reason",
	Option{"first_kit", "Första kit", "First kit"},
	Option{"replacement_used", "Ersättning efter användning", "Replacement after use"},
	Option{"replacement_lost", "Ersättning för förlorat", "Replacement for lost"},
	Option{"replacement_expired", "Ersättning för utgånget", "Replacement for expired"},
)

// ReversalOutcome is the reported outcome of an overdose where naloxone was
// or could have been used.
type ReversalOutcome string

// Reversal outcomes.
const (
	OutcomeRecovered   ReversalOutcome = "recovered"
	OutcomeHospital    ReversalOutcome = "taken_to_hospital"
	OutcomeDied        ReversalOutcome = "died"
	OutcomeUnknown     ReversalOutcome = "unknown"
	OutcomeNotReported ReversalOutcome = "not_stated"
)

// ReversalOutcomeEnum lists the outcomes of a reported overdose reversal.
var ReversalOutcomeEnum = newEnumeration("reversal_outcome",
	Option{"recovered", "Återhämtade sig på platsen", "Recovered at the scene"},
	Option{"taken_to_hospital", "Fördes till sjukhus", "Taken to hospital"},
	Option{"died", "Avled", "Died"},
	Option{"unknown", "Okänt", "Unknown"},
	Option{"not_stated", "Ej angivet", "Not stated"},
)

// ServiceCategory is the kind of service a referral goes to.
type ServiceCategory string

// Service categories.
const (
	ServiceAddictionClinic    ServiceCategory = "addiction_clinic"
	ServiceSocialServices     ServiceCategory = "social_services"
	ServicePsychiatry         ServiceCategory = "psychiatry"
	ServicePrimaryCare        ServiceCategory = "primary_care"
	ServiceInfectionClinic    ServiceCategory = "infection_clinic"
	ServiceOpioidSubstitution ServiceCategory = "opioid_substitution"
	ServiceYouthClinic        ServiceCategory = "youth_clinic"
	ServiceHousing            ServiceCategory = "housing"
	ServiceDental             ServiceCategory = "dental"
	ServiceOther              ServiceCategory = "other"
)

// ServiceCategoryEnum lists the service categories.
var ServiceCategoryEnum = newEnumeration("service_category",
	Option{"addiction_clinic", "Beroendemottagning", "Addiction clinic"},
	Option{"social_services", "Socialtjänst", "Social services"},
	Option{"psychiatry", "Psykiatri", "Psychiatry"},
	Option{"primary_care", "Vårdcentral", "Primary care"},
	Option{"infection_clinic", "Infektionsmottagning och testning", "Infection and testing clinic"},
	Option{"opioid_substitution", "LARO", "Opioid substitution treatment"},
	Option{"youth_clinic", "Maria ungdom", "Youth clinic"},
	Option{"housing", "Boende", "Housing"},
	Option{"dental", "Tandvård", "Dental care"},
	Option{"other", "Annan verksamhet", "Other service"},
)

// ReferralStatus is where a referral is in its lifecycle: sent, received,
// attended, closed; or, instead of attended, declined or not reached.
type ReferralStatus string

// Referral statuses.
const (
	StatusSent       ReferralStatus = "sent"
	StatusReceived   ReferralStatus = "received"
	StatusDeclined   ReferralStatus = "declined"
	StatusNotReached ReferralStatus = "not_reached"
	StatusAttended   ReferralStatus = "attended"
	StatusClosed     ReferralStatus = "closed"
)

// ReferralStatusEnum lists the referral statuses in lifecycle order.
var ReferralStatusEnum = newEnumeration("referral_status",
	Option{"sent", "Skickad", "Sent"},
	Option{"received", "Mottagen", "Received"},
	Option{"declined", "Avböjd", "Declined"},
	Option{"not_reached", "Ej nådd", "Not reached"},
	Option{"attended", "Påbörjad kontakt", "Attended"},
	Option{"closed", "Avslutad", "Closed"},
)

// Rank returns the status's place in the lifecycle: a status may only be
// followed by one of higher rank, except after an explicit reopen. Declined
// and not reached share a rank: neither follows the other. It returns -1 for
// an unknown status.
func (s ReferralStatus) Rank() int {
	switch s {
	case StatusSent:
		return 0
	case StatusReceived:
		return 1
	case StatusDeclined, StatusNotReached:
		return 2
	case StatusAttended:
		return 3
	case StatusClosed:
		return 4
	}
	return -1
}

// Closes reports whether a referral of status s may be closed: only once it
// was attended (or is closed already), so that every closed referral is
// known to have been attended.
func (s ReferralStatus) Closes() bool { return s == StatusAttended || s == StatusClosed }

// Substance is the substance category a contact mainly concerns. The
// categories follow the Swedish definition of addiction: alcohol, narcotics,
// other addictive substances, prescription drugs, doping and gambling.
type Substance string

// Substance categories.
const (
	SubstanceOpioids      Substance = "opioids"
	SubstanceStimulants   Substance = "stimulants"
	SubstanceCannabis     Substance = "cannabis"
	SubstanceAlcohol      Substance = "alcohol"
	SubstancePrescription Substance = "prescription"
	SubstanceDoping       Substance = "doping"
	SubstanceGambling     Substance = "gambling"
	SubstanceOther        Substance = "other"
	SubstanceNotStated    Substance = "not_stated"
)

// SubstanceEnum lists the substance categories.
var SubstanceEnum = newEnumeration("substance",
	Option{"opioids", "Opioider", "Opioids"},
	Option{"stimulants", "Centralstimulantia", "Stimulants"},
	Option{"cannabis", "Cannabis", "Cannabis"},
	Option{"alcohol", "Alkohol", "Alcohol"},
	Option{"prescription", "Beroendeframkallande läkemedel", "Prescription drugs"},
	Option{"doping", "Dopningsmedel", "Doping substances"},
	Option{"gambling", "Spel om pengar", "Gambling"},
	Option{"other", "Annat", "Other"},
	Option{"not_stated", "Ej angivet", "Not stated"},
)

// OrgKind is the kind of organisation: the municipality (socialtjänst, under
// SoL), the region (healthcare, under HSL) or a non-governmental one.
type OrgKind string

// Organisation kinds.
const (
	OrgMunicipality OrgKind = "municipality"
	OrgRegion       OrgKind = "region"
	OrgNGO          OrgKind = "ngo"
)

// OrgKindEnum lists the kinds of organisation.
var OrgKindEnum = newEnumeration("org_kind",
	Option{"municipality", "Kommun", "Municipality"},
	Option{"region", "Region", "Region"},
	Option{"ngo", "Idéburen organisation", "Non-governmental organisation"},
)

// StaffRole is a staff member's role, for attribution and access.
type StaffRole string

// Staff roles.
const (
	RoleOutreachWorker StaffRole = "outreach_worker"
	RoleNurse          StaffRole = "nurse"
	RoleCounsellor     StaffRole = "counsellor"
	RoleManager        StaffRole = "manager"
)

// StaffRoleEnum lists the staff roles.
var StaffRoleEnum = newEnumeration("staff_role",
	Option{"outreach_worker", "Fältarbetare", "Outreach worker"},
	Option{"nurse", "Sjuksköterska", "Nurse"},
	Option{"counsellor", "Kurator", "Counsellor"},
	Option{"manager", "Enhetschef", "Manager"},
)
