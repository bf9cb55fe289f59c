package tui

import (
	"math"
	"strings"
)

// historyLen is how many samples a history keeps: at one refresh a
// second, three minutes, long enough to see a burst or a leak start and
// small enough (2 x 180 floats) to keep for hundreds of instances.
const historyLen = 180

// ring holds the last historyLen samples of one value. Samples are
// numbered by the model's refresh count, so the rings of all instances
// line up and an app's history is the sum of its instances'.
type ring struct {
	buf [historyLen]float64
	end int // number of the next sample; samples end-n .. end-1 are held
	n   int
}

// add records v as sample number i (the model's refresh count).
func (r *ring) add(i int, v float64) {
	if r.n > 0 && i != r.end {
		// A gap (an id that went away and came back): forget what is no
		// longer contiguous.
		r.n = 0
	}
	r.buf[i%historyLen] = v
	r.end = i + 1
	r.n = min(r.n+1, historyLen)
}

// at returns sample number i, if held.
func (r *ring) at(i int) (float64, bool) {
	if i < r.end-r.n || i >= r.end {
		return 0, false
	}
	return r.buf[i%historyLen], true
}

// history is what the dashboard remembers of one instance.
type history struct {
	cpu, mem ring
}

// series returns sample i of something, if known.
type series func(i int) (float64, bool)

// bars are the eight levels of a sparkline, lowest first.
var bars = []rune("▁▂▃▄▅▆▇█")

// sparkline draws the samples of s that end before sample number end as
// width cells, the newest on the right. held is how many samples the
// line may span (at most historyLen). While they fit, a cell is a sample;
// beyond, a cell is the largest of per samples, per doubling as needed up
// to the whole history, so the line fills its width early and spans
// minutes later. Cells cover fixed sample numbers (multiples of per), so
// between doublings the line shifts by whole cells instead of wobbling on
// every refresh. Heights are relative to the peak, but never to less than
// floor: an idle app's noise stays low instead of filling the cells.
// Cells with no sample are blank.
func sparkline(s series, end, held, width int, floor float64) (line string, peak float64) {
	if width <= 0 {
		return "", 0
	}
	held = min(held, historyLen)
	per, most := 1, (historyLen+width-1)/width
	for per*width < held && per < most {
		per *= 2
	}
	per = min(per, most)
	cells := make([]float64, width)
	known := make([]bool, width)
	lastBucket := (end - 1) / per
	for c := range width {
		b := lastBucket - (width - 1 - c)
		if b < 0 {
			continue
		}
		for i := b * per; i < (b+1)*per && i < end; i++ {
			if v, ok := s(i); ok && i >= end-held {
				if !known[c] || v > cells[c] {
					cells[c] = v
				}
				known[c] = true
			}
		}
		if known[c] {
			peak = max(peak, cells[c])
		}
	}
	top := max(peak, floor)
	var b strings.Builder
	for c := range width {
		if !known[c] {
			b.WriteByte(' ')
			continue
		}
		lvl := 0
		if top > 0 {
			lvl = int(math.Ceil(cells[c]/top*float64(len(bars)))) - 1
		}
		b.WriteRune(bars[min(max(lvl, 0), len(bars)-1)])
	}
	return b.String(), peak
}
