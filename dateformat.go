package tend

import "strings"

// TimeLayout is what `time: true` means: PM2's YYYY-MM-DDTHH:mm:ss.
const TimeLayout = "2006-01-02T15:04:05"

// dayjsTokens maps dayjs format tokens to Go layout elements, longest first
// so that "YYYY" wins over "YY". "H" (24-hour, unpadded) has no Go layout
// element and is padded.
var dayjsTokens = []struct{ dayjs, gol string }{
	{"YYYY", "2006"}, {"YY", "06"},
	{"MMMM", "January"}, {"MMM", "Jan"}, {"MM", "01"}, {"M", "1"},
	{"DD", "02"}, {"D", "2"},
	{"dddd", "Monday"}, {"ddd", "Mon"},
	{"HH", "15"}, {"H", "15"}, {"hh", "03"}, {"h", "3"},
	{"mm", "04"}, {"m", "4"},
	{"ss", "05"}, {"s", "5"},
	{"SSS", "000"}, {"SS", "00"}, {"S", "0"},
	{"ZZ", "-0700"}, {"Z", "-07:00"},
	{"A", "PM"}, {"a", "pm"},
}

// GoLayout translates a dayjs log_date_format (PM2's) into a Go time layout.
// A format with none of dayjs's date or time tokens is taken to be a Go
// layout already ("2006-01-02 15:04") and returned unchanged. Text in
// [brackets] is kept literally, as dayjs does.
func GoLayout(f string) string {
	if !looksDayjs(f) {
		return f
	}
	var b strings.Builder
	for i := 0; i < len(f); {
		if f[i] == '[' {
			if j := strings.IndexByte(f[i:], ']'); j > 0 {
				b.WriteString(f[i+1 : i+j])
				i += j + 1
				continue
			}
		}
		matched := false
		for _, t := range dayjsTokens {
			if strings.HasPrefix(f[i:], t.dayjs) {
				b.WriteString(t.gol)
				i += len(t.dayjs)
				matched = true
				break
			}
		}
		if !matched {
			b.WriteByte(f[i])
			i++
		}
	}
	return b.String()
}

// looksDayjs reports whether f uses any of the tokens PM2 users write.
func looksDayjs(f string) bool {
	for _, t := range []string{"YY", "MM", "DD", "HH", "hh", "mm", "ss", "SSS"} {
		if strings.Contains(f, t) {
			return true
		}
	}
	return false
}
