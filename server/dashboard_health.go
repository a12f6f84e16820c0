package server

import (
	"strconv"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server/stats"
)

// healthTexts are the words of the tables of infection testing,
// vaccination and deaths, in Swedish and English; init adds them to
// texts.
var healthTexts = map[string][2]string{
	"health_tests_heading":      {"Infektionstester", "Infection testing"},
	"health_tests_caption":      {"Tester per infektion", "Tests by infection"},
	"health_test":               {"Test", "Test"},
	"health_tests_offered":      {"Erbjudna", "Offered"},
	"health_tests_declined":     {"Avböjda", "Declined"},
	"health_tests_performed":    {"Tagna", "Performed"},
	"health_tests_reactive":     {"Reaktiva", "Reactive"},
	"health_tests_linked":       {"Reaktiva som nått vård", "Reactive, linked to care"},
	"health_def_tests_offered":  {"Tester som erbjöds: avböjda och tagna.", "Tests offered: declined and performed."},
	"health_def_tests_declined": {"Erbjudna tester som klienten avböjde.", "Tests offered that the client declined."},
	"health_def_tests_performed": {"Snabbtester och prov som skickats till laboratorium.",
		"Rapid tests, and samples sent to a laboratory."},
	"health_def_tests_reactive": {"Tagna tester med reaktivt svar, räknade i den period testet togs.", "Performed tests with a reactive result, counted in the period the test was taken."},
	"health_def_tests_linked": {"Reaktiva tester följda av en remiss till infektionsmottagning som nått status påbörjad kontakt: gjord vid samma kontakt eller för samma klientkod inom 90 dagar.",
		"Reactive tests followed by a referral to an infection clinic that reached attended: made at the same contact, or for the same client code within 90 days."},
	"health_care_caption":  {"Vaccinationer och dödsfall", "Vaccinations and deaths"},
	"health_figure":        {"Nyckeltal", "Figure"},
	"health_vaccine_doses": {"Vaccindoser, alla", "Vaccine doses, all"},
	"health_hepb_series":   {"Fullföljda hepatit B-serier", "Hepatitis B series completed"},
	"health_deaths_known":  {"Kända dödsfall", "Deaths known"},
	"health_def_care":      {"Doser räknas var för sig. En hepatit B-serie räknas fullföljd vid tredje dosen hepatit B eller kombinerat vaccin. Ett dödsfall räknas en gång per klientkod, i den period dödsdatumet ligger.", "Doses count one by one. A hepatitis B series counts as completed at the third dose of hepatitis B or the combined vaccine. A death counts once per client code, in the period of its date."},
}

func init() {
	for k, v := range healthTexts {
		if _, dup := texts[k]; dup {
			panic("server: text " + k + " defined twice")
		}
		texts[k] = v
	}
}

// healthTables returns the overview's tables of tests (by test: offered,
// declined, performed, reactive, linked to care) and of vaccinations and
// deaths, for the figures of the range, cur, and a year earlier, prev (nil
// unless compared).
func healthTables(cur, prev figures, rangeLabel, prevLabel string, l schema.Lang) (tests, care shownTable) {
	cols := []struct {
		key string
		ind func(schema.TestKind) stats.Indicator
	}{
		{"tests_offered", stats.TestsOffered}, {"tests_declined", stats.TestsDeclined}, {"tests_performed", stats.TestsPerformed},
		{"tests_reactive", stats.TestsReactive}, {"tests_linked", stats.TestsLinked},
	}
	tests = shownTable{ID: "tests", Caption: text("health_tests_caption", l) + ", " + rangeLabel, Head: []string{text("health_test", l)}}
	for _, c := range cols {
		tests.Columns = append(tests.Columns, column{Key: c.key, Label: text("health_"+c.key, l), Def: text("health_def_"+c.key, l)})
	}
	totals := make([]int64, len(cols))
	for _, o := range schema.TestKindEnum.Options {
		r := shownRow{Label: o.Label(l), Raw: o.Code}
		for i, c := range cols {
			n := cur[c.ind(schema.TestKind(o.Code))]
			totals[i] += n
			r.Cells, r.raws = append(r.Cells, formatInt(n, l)), append(r.raws, strconv.FormatInt(n, 10))
		}
		tests.Rows = append(tests.Rows, r)
	}
	total := shownRow{Label: text("total", l), Raw: "total", Total: true}
	for _, n := range totals {
		total.Cells, total.raws = append(total.Cells, formatInt(n, l)), append(total.raws, strconv.FormatInt(n, 10))
	}
	tests.Rows = append(tests.Rows, total)

	care = shownTable{ID: "vaccinations-deaths", Caption: text("health_care_caption", l), Head: []string{text("health_figure", l)},
		Columns: []column{{Key: "current", Label: rangeLabel, Def: text("health_def_care", l)}}}
	if prev != nil {
		care.Columns = append(care.Columns, column{Key: "year_earlier", Label: text("year_earlier", l) + " (" + prevLabel + ")"})
	}
	row := func(label, raw string, ind stats.Indicator) {
		r := shownRow{Label: label, Raw: raw, Cells: []string{formatInt(cur[ind], l)}, raws: []string{strconv.FormatInt(cur[ind], 10)}}
		if prev != nil {
			r.Cells, r.raws = append(r.Cells, formatInt(prev[ind], l)), append(r.raws, strconv.FormatInt(prev[ind], 10))
		}
		care.Rows = append(care.Rows, r)
	}
	for _, o := range schema.VaccineEnum.Options {
		row(o.Label(l), string(stats.VaccineDosesOf(schema.Vaccine(o.Code))), stats.VaccineDosesOf(schema.Vaccine(o.Code)))
	}
	row(text("health_vaccine_doses", l), string(stats.VaccineDoses), stats.VaccineDoses)
	row(text("health_hepb_series", l), string(stats.HepBSeriesCompleted), stats.HepBSeriesCompleted)
	row(text("health_deaths_known", l), string(stats.DeathsKnown), stats.DeathsKnown)
	return tests, care
}
