package metrics

import (
	"bufio"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The metric types tend uses. It exports no summaries or histograms.
const (
	counter = "counter"
	gauge   = "gauge"
)

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

// textWriter writes metric families in the Prometheus text exposition
// format, version 0.0.4. Call family, then sample for each of its series;
// the format needs a family's series together, under one HELP and TYPE.
//
// The HELP and TYPE lines go out with a family's first sample, so a family
// with no series (no instance has exited yet) is left out entirely.
type textWriter struct {
	w               *bufio.Writer
	name, help, typ string // the current family
	started         bool   // its HELP and TYPE are written
	// dropped counts series left out because a label value was not valid
	// UTF-8, which the format cannot carry.
	dropped int
}

// family starts the family name; help and typ are its HELP text and TYPE.
func (t *textWriter) family(name, help, typ string) {
	t.name, t.help, t.typ, t.started = name, help, typ, false
}

// sample writes one series of the current family with value v and labels,
// given as name, value pairs. A label value that is not valid UTF-8 (an app
// name, say) costs only this series, counted in dropped, not the scrape.
func (t *textWriter) sample(v float64, labels ...string) {
	for i := 1; i < len(labels); i += 2 {
		if !utf8.ValidString(labels[i]) {
			t.dropped++
			return
		}
	}
	w := t.w
	if !t.started {
		t.started = true
		w.WriteString("# HELP ")
		w.WriteString(t.name)
		w.WriteByte(' ')
		helpEscaper.WriteString(w, t.help)
		w.WriteString("\n# TYPE ")
		w.WriteString(t.name)
		w.WriteByte(' ')
		w.WriteString(t.typ)
		w.WriteByte('\n')
	}
	w.WriteString(t.name)
	for i := 0; i+1 < len(labels); i += 2 {
		if i == 0 {
			w.WriteByte('{')
		} else {
			w.WriteByte(',')
		}
		w.WriteString(labels[i])
		w.WriteString(`="`)
		labelEscaper.WriteString(w, labels[i+1])
		w.WriteByte('"')
	}
	if len(labels) > 1 {
		w.WriteByte('}')
	}
	w.WriteByte(' ')
	w.Write(appendFloat(w.AvailableBuffer(), v))
	w.WriteByte('\n')
}

// appendFloat appends v as the text format spells it: +Inf, -Inf and NaN by
// name, and numbers in the shortest form that parses back to v, without an
// exponent in the range people read in curl (52428800, not 5.24288e+07;
// 1795309153.27, a start time) as JavaScript prints numbers.
func appendFloat(b []byte, v float64) []byte {
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case math.IsInf(v, +1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	case v == 0 || a >= 1e-4 && a < 1e21:
		return strconv.AppendFloat(b, v, 'f', -1, 64)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}
