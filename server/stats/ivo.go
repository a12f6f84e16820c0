package stats

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"

	"github.com/brygga/brygga/schema"
)

// The region's yearly report to IVO on its needle exchange (SOSFS 2007:2,
// 13-14 §§) and the drug-death follow-up, both read from the publication:
// every figure is a cell of the authority's grid, perturbed and audited as
// every other (docs/REPORTS.md), and reads the same here as in
// GET /v1/reports/indicators.

// IVOItem is one figure of the IVO report: a cell of the year's table.
type IVOItem struct {
	// Item is the report's item the figure answers, for example
	// "participants" or "tests".
	Item    string    `json:"item"`
	LabelSV string    `json:"label_sv"`
	LabelEN string    `json:"label_en"`
	Ind     Indicator `json:"indicator"`
	// By and Group are the cell's breakdown and group: total, or a gender
	// or age band.
	By    string `json:"by"`
	Group string `json:"group"`
	Cell
}

// IVOGap is an item of the report that Brygga's records cannot answer,
// or answer only in part, and why.
type IVOGap struct {
	Item    string `json:"item"`
	LabelSV string `json:"label_sv"`
	LabelEN string `json:"label_en"`
	Reason  string `json:"reason"`
}

// IVOReport is the quantitative part of a region's yearly report to IVO.
type IVOReport struct {
	Region string `json:"region"`
	Year   int    `json:"year"`
	// Status is the year's: final once it has ended and every tablet has
	// synced since.
	Status      Status    `json:"status"`
	K           int64     `json:"k"`
	Method      string    `json:"method"`
	Items       []IVOItem `json:"items"`
	NotAnswered []IVOGap  `json:"not_answered"`
}

// ivoTopics are the labels of the report's items, in Swedish and English.
var ivoTopics = map[string][2]string{
	"participants":           {"Deltagare (unika klientkoder)", "Participants (distinct client codes)"},
	"participants_by_gender": {"Deltagarnas könsfördelning", "Participants by gender"},
	"participants_by_age":    {"Deltagarnas åldersfördelning", "Participants by age group"},
	"visits":                 {"Besök", "Visits"},
	"visits_by_gender":       {"Besök per kön", "Visits by gender"},
	"visits_by_age":          {"Besök per åldersgrupp", "Visits by age group"},
	"exchange":               {"Utbytta sprutor och kanyler", "Syringes and needles exchanged"},
	"tests":                  {"Hiv- och hepatittester och deras utfall", "HIV and hepatitis tests and their outcome"},
	"infections":             {"Infektioner: reaktiva testsvar för hiv, hepatit B och C och andra infektioner", "Infections: reactive results for HIV, hepatitis B and C and other infections"},
	"vaccination":            {"Vaccination mot hepatit A och B", "Vaccination against hepatitis A and B"},
	"mortality":              {"Dödlighet: kända dödsfall", "Mortality: deaths known"},
	"mortality_by_gender":    {"Kända dödsfall per kön", "Deaths known by gender"},
	"mortality_by_age":       {"Kända dödsfall per åldersgrupp", "Deaths known by age group"},
	"care":                   {"Remisser till vård och behandling, och de som ledde till kontakt", "Referrals to care and treatment, and those attended"},
}

// ivoGaps are the items of SOSFS 2007:2 13-14 §§ that the records cannot
// answer, or answer only in part.
var ivoGaps = []IVOGap{
	{"participants", "Deltagare", "Participants", "Only participants with a client code are counted as people; anonymous visits count as visits, not as participants."},
	{"participants_by_age", "Åldersfördelning", "Age distribution", "Ages are known as age bands (under 18, 18-24, ... 65 and over), never as exact ages."},
	{"test_outcomes", "Testernas utfall", "Outcome of the tests", "Published are the tests performed and those with a reactive result; performed tests that were non-reactive, pending or not collected are not published one by one (they are the performed less the reactive)."},
	{"infections", "Infektioner", "Infections", "Infections are known only as reactive results of the tests the service performed (a screening result, per test, not per person and not a confirmed diagnosis); infections diagnosed elsewhere or known before are not recorded."},
	{"other_infections", "Andra infektioner", "Other infections", "Of other infections only syphilis tests are recorded; abscesses, endocarditis and other injection-related infections are not."},
	{"mortality", "Dödlighet", "Mortality", "Deaths are those the service learnt of (from staff or a registry); causes of death are not recorded."},
	{"detoxification", "Avgiftning", "Detoxification", "There is no referral category for detoxification: it is part of referrals to addiction clinics."},
	{"care_received", "Vård, behandling och eftervård", "Care, treatment and aftercare received", "Care is known as referrals made and referrals that reached attended; care given, and aftercare, are not recorded, and attendance is published for all services together, not by service."},
	{"resources", "Resurser i förhållande till behov", "Resources against needs", "Not a figure: the region's own assessment."},
	{"staff", "Personal", "Staff", "Not recorded: staff are identified by system ids only, without working time."},
	{"cooperation", "Samverkan", "Cooperation", "Not a figure: the region's own description."},
}

// IVO returns the IVO report of region for year from the publication's
// yearly tables, by total, gender and age band.
func (p *Publication) IVO(region string, year int) *IVOReport {
	r := &IVOReport{Region: region, Year: year, K: p.K, Method: "cell-key", Items: []IVOItem{}, NotAnswered: ivoGaps}
	tables := map[Dim]*Report{}
	for _, by := range []Dim{ByTotal, ByGender, ByAgeBand} {
		tables[by] = p.Report(Year, year, by)
	}
	r.Status = Provisional
	if ps := tables[ByTotal].Periods; len(ps) > 0 {
		r.Status = ps[0].Status
	}
	add := func(item string, by Dim, inds ...Indicator) {
		label := ivoTopics[item]
		for _, row := range tables[by].Rows {
			if by != ByTotal && row.Group == TotalGroup {
				continue
			}
			for _, ind := range inds {
				r.Items = append(r.Items, IVOItem{Item: item, LabelSV: label[0], LabelEN: label[1], Ind: ind,
					By: byLabel(by), Group: row.Group, Cell: row.Indicators[ind]})
			}
		}
	}
	add("participants", ByTotal, UniqueClients)
	add("participants_by_gender", ByGender, UniqueClients)
	add("participants_by_age", ByAgeBand, UniqueClients)
	add("visits", ByTotal, Contacts)
	add("visits_by_gender", ByGender, Contacts)
	add("visits_by_age", ByAgeBand, Contacts)
	add("exchange", ByTotal, SyringesOut, NeedlesOut, SyringesReturned)
	var tests, reactive []Indicator
	for _, t := range testKinds {
		tests = append(tests, TestsOffered(t), TestsDeclined(t), TestsPerformed(t), TestsReactive(t), TestsLinked(t))
		reactive = append(reactive, TestsReactive(t))
	}
	add("tests", ByTotal, tests...)
	add("infections", ByTotal, reactive...)
	add("vaccination", ByTotal, vaccineFamily()...)
	add("mortality", ByTotal, DeathsKnown)
	add("mortality_by_gender", ByGender, DeathsKnown)
	add("mortality_by_age", ByAgeBand, DeathsKnown)
	care := []Indicator{Referrals, ReferralsAttended}
	for _, s := range []schema.ServiceCategory{schema.ServiceAddictionClinic, schema.ServiceOpioidSubstitution,
		schema.ServicePsychiatry, schema.ServiceInfectionClinic, schema.ServiceYouthClinic} {
		care = append(care, ReferralsTo(s))
	}
	add("care", ByTotal, care...)
	return r
}

func byLabel(by Dim) string {
	if by == ByTotal {
		return "total"
	}
	return string(by)
}

// WriteCSV writes the report one figure a line: item, indicator, by,
// group, value, withheld, revised; then the items not answered, with an
// empty indicator and their reason in the column note.
func (r *IVOReport) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"region", "year", "status", "item", "indicator", "by", "group", "value", "withheld", "revised", "note"})
	head := []string{r.Region, strconv.Itoa(r.Year), string(r.Status)}
	for _, it := range r.Items {
		v := ""
		if it.Value != nil {
			v = strconv.FormatInt(*it.Value, 10)
		}
		cw.Write(append(head, it.Item, string(it.Ind), it.By, it.Group, v, strconv.FormatBool(it.Withheld), strconv.FormatBool(it.Revised), ""))
	}
	for _, g := range r.NotAnswered {
		cw.Write(append(head, g.Item, "", "", "", "", "", "", g.Reason))
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("ivo csv: %w", err)
	}
	return nil
}

// FollowUpRow is one group of the drug-death follow-up in one period.
type FollowUpRow struct {
	Period     string             `json:"period"`
	Status     Status             `json:"status"`
	Group      string             `json:"group"`
	Label      string             `json:"label"`
	Indicators map[Indicator]Cell `json:"indicators"`
}

// FollowUp is the drug-death follow-up of the clients reported deceased
// in the periods of a year: for the deaths of each period and group, the
// bands of days since their last contact and the sums of what they had in
// the 12 months before. Every figure is a cell of the publication.
type FollowUp struct {
	Year         int            `json:"year"`
	Period       Period         `json:"period"`
	By           Dim            `json:"by"`
	K            int64          `json:"k"`
	Method       string         `json:"method"`
	WindowMonths int            `json:"window_months"`
	Indicators   []Indicator    `json:"indicators"`
	Groups       []Group        `json:"groups"`
	Periods      []ReportPeriod `json:"periods"`
	Rows         []FollowUpRow  `json:"rows"`
}

// FollowUpIndicators are the indicators of the follow-up, in order.
var FollowUpIndicators = append(deathFamily(), deathSums...)

// FollowUp returns the drug-death follow-up of the periods of kind period
// in year, by by: the table Report returns, of the follow-up's indicators
// only.
func (p *Publication) FollowUp(period Period, year int, by Dim) *FollowUp {
	rep := p.Report(period, year, by)
	f := &FollowUp{Year: rep.Year, Period: rep.Period, By: rep.By, K: rep.K, Method: rep.Method, WindowMonths: followUpMonths,
		Indicators: FollowUpIndicators, Groups: rep.Groups, Periods: rep.Periods, Rows: make([]FollowUpRow, 0, len(rep.Rows))}
	for _, row := range rep.Rows {
		fr := FollowUpRow{Period: row.Period, Status: row.Status, Group: row.Group, Label: row.Label,
			Indicators: make(map[Indicator]Cell, len(FollowUpIndicators))}
		for _, ind := range FollowUpIndicators {
			fr.Indicators[ind] = row.Indicators[ind]
		}
		f.Rows = append(f.Rows, fr)
	}
	return f
}

// WriteCSV writes the follow-up as Report.WriteCSV does, of its
// indicators only and without rates.
func (f *FollowUp) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"period", "status", "by", "group", "label", "indicator", "value", "withheld", "revised"})
	by := byLabel(f.By)
	for _, row := range f.Rows {
		for _, ind := range f.Indicators {
			c := row.Indicators[ind]
			v := ""
			if c.Value != nil {
				v = strconv.FormatInt(*c.Value, 10)
			}
			cw.Write([]string{row.Period, string(row.Status), by, row.Group, row.Label, string(ind), v,
				strconv.FormatBool(c.Withheld), strconv.FormatBool(c.Revised)})
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("follow-up csv: %w", err)
	}
	return nil
}
