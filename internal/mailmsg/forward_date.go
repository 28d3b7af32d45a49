package mailmsg

import (
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
)

var (
	fdZoneGMT   = regexp.MustCompile(`(?i)\b(?:gmt|utc|ut)\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?\b`)
	fdZoneNum   = regexp.MustCompile(`(?:^|[\s(])([+-])(\d{2}):?(\d{2})\b`)
	fdISO       = regexp.MustCompile(`\b(\d{4})-(\d{1,2})-(\d{1,2})\b`)
	fdYearFirst = regexp.MustCompile(`\b(\d{4})\.\s?(\d{1,2})\.\s?(\d{1,2})\b`)
	fdNumeric   = regexp.MustCompile(`\b(\d{1,2})([./-])\s?(\d{1,2})[./-]\s?(\d{4})\b`)
	fdNumeric2  = regexp.MustCompile(`\b(\d{1,2})([./-])(\d{1,2})[./-](\d{2})\b`) // "28.10.26", "10/28/26" (Outlook for Mac)
	fdTime      = regexp.MustCompile(`\b(\d{1,2}):(\d{2})(?::(\d{2}))?\b`)
	fdDotTime   = regexp.MustCompile(`\b(\d{1,2})\.(\d{2})(?:\.(\d{2}))?\b`)
	fdMeridiem  = regexp.MustCompile(`^\s*(?:([ap])\.?\s?m\b\.?|(vorm|nachm)\b\.?)`)
	fdYear      = regexp.MustCompile(`\b\d{4}\b`)
	fdKanji     = regexp.MustCompile(`(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日`) // "2026年11月2日"
)

// parseFwdDate reads the date of a forwarded header block: RFC 5322 dates
// (Thunderbird, mutt) and the long localized dates of Outlook, Gmail and
// Apple Mail ("Montag, 2. November 2026 10:13", "lun. 2 nov. 2026 à 10:13",
// "2026. november 2., hétfő 10:13", "Monday, November 2, 2026 10:13 AM").
// It reads the parts it recognises wherever they are (day, month name or
// number, four-digit year, time, AM/PM, zone) and ignores the words it does
// not (weekdays, "at", "um", "de", "г."). A time without zone is taken in
// loc, and assumed says so. ok is false when day, month or year is missing.
func parseFwdDate(s, lang string, loc *time.Location) (t time.Time, assumed, ok bool) {
	s = strings.TrimSpace(normSpace(s))
	if s == "" || len(s) > 200 {
		return time.Time{}, false, false
	}
	if t, err := mail.ParseDate(s); err == nil && plausibleDate(t) {
		return t, false, true
	}
	if loc == nil {
		loc = time.UTC
	}
	low := strings.ToLower(s)
	cut := func(loc []int) {
		low = low[:loc[0]] + " " + low[loc[1]:]
	}

	// Zone: "GMT+1", "UTC+01:00", "+0100", "CET".
	var zone *time.Location
	if m := fdZoneGMT.FindStringSubmatchIndex(low); m != nil {
		zone = offsetZone(low[m[2]:m[3]], low[m[4]:m[5]], sub(low, m, 3))
		cut(m[:2])
	} else if m := fdZoneNum.FindStringSubmatchIndex(low); m != nil {
		zone = offsetZone(low[m[2]:m[3]], low[m[4]:m[5]], low[m[6]:m[7]])
		cut([]int{m[2], m[1]})
	}

	// A numeric date: "2026-11-02", "2026. 11. 02.", "02.11.2026", "11/2/2026",
	// "28.10.26" (a two-digit year only when no four-digit one is there).
	year, month, day := 0, 0, 0
	dateAt := -1
	numeric := func(m []int, yearOffset int) {
		a, b := atoi(sub(low, m, 1)), atoi(sub(low, m, 3))
		year = atoi(sub(low, m, 4)) + yearOffset
		if sub(low, m, 2) == "/" && lang == "en" && a <= 12 {
			month, day = a, b // US order
		} else {
			day, month = a, b
		}
		dateAt = m[0]
		cut(m[:2])
	}
	if m := fdKanji.FindStringSubmatchIndex(low); m != nil {
		year, month, day = atoi(sub(low, m, 1)), atoi(sub(low, m, 2)), atoi(sub(low, m, 3))
		cut(m[:2])
	} else if m := fdISO.FindStringSubmatchIndex(low); m != nil {
		year, month, day = atoi(sub(low, m, 1)), atoi(sub(low, m, 2)), atoi(sub(low, m, 3))
		cut(m[:2])
	} else if m := fdYearFirst.FindStringSubmatchIndex(low); m != nil {
		year, month, day = atoi(sub(low, m, 1)), atoi(sub(low, m, 2)), atoi(sub(low, m, 3))
		cut(m[:2])
	} else if m := fdNumeric.FindStringSubmatchIndex(low); m != nil {
		numeric(m, 0)
	} else if m := fdNumeric2.FindStringSubmatchIndex(low); m != nil && !fdYear.MatchString(low) {
		numeric(m, 2000)
	}

	// Time: "10:13", "10:13:58"; Finnish "10.13" after the year.
	hour, minute, second, haveTime := 0, 0, 0, false
	if m := fdTime.FindStringSubmatchIndex(low); m != nil {
		hour, minute, second, haveTime = atoi(sub(low, m, 1)), atoi(sub(low, m, 2)), atoi(sub(low, m, 3)), true
		low = low[:m[0]] + " " + meridiem(low[m[1]:], &hour)
	} else if y := fdYear.FindStringIndex(low); y != nil || dateAt >= 0 {
		after := dateAt // the numeric date, cut out, held the year
		if y != nil {
			after = y[1]
		}
		if m := fdDotTime.FindStringSubmatchIndex(low[after:]); m != nil {
			rest := low[after:]
			hour, minute, second, haveTime = atoi(sub(rest, m, 1)), atoi(sub(rest, m, 2)), atoi(sub(rest, m, 3)), true
			low = low[:after] + rest[:m[0]] + " " + meridiem(rest[m[1]:], &hour)
		}
	}

	if haveTime && hour < 12 && strings.Contains(low, "午後") { // Japanese "PM"
		hour += 12
	}

	// The words: month names, zone abbreviations; the numbers: day, year.
	monthWord := 0
	for _, tok := range strings.FieldsFunc(low, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		if tok[0] >= '0' && tok[0] <= '9' {
			n := atoi(tok)
			switch {
			case len(tok) == 4 && year == 0:
				year = n
			case len(tok) <= 2 && day == 0 && n >= 1:
				day = n
			}
			continue
		}
		if off, ok := zoneOffsets[tok]; ok && zone == nil {
			zone = time.FixedZone(strings.ToUpper(tok), off)
			continue
		}
		if n := lookupMonth(tok, lang); n != 0 {
			monthWord = n // the last one wins: "mar. 3 nov." is Tuesday, 3 November
		}
	}
	if month == 0 {
		month = monthWord
	}
	if year < 1970 || year >= 2200 || month < 1 || month > 12 || day < 1 || day > daysIn(time.Month(month), year) {
		return time.Time{}, false, false
	}
	if !haveTime || hour > 23 || minute > 59 || second > 60 {
		hour, minute, second = 0, 0, 0
	}
	if zone == nil {
		zone, assumed = loc, true
	}
	return time.Date(year, time.Month(month), day, hour, minute, second, 0, zone), assumed, true
}

// meridiem applies an "AM"/"PM" (or "vorm."/"nachm.") right after a time to
// hour and returns the rest of the string without it.
func meridiem(rest string, hour *int) string {
	m := fdMeridiem.FindStringSubmatchIndex(rest)
	if m == nil {
		return rest
	}
	pm := sub(rest, m, 1) == "p" || sub(rest, m, 2) == "nachm"
	switch {
	case pm && *hour < 12:
		*hour += 12
	case !pm && *hour == 12:
		*hour = 0
	}
	return rest[m[1]:]
}

func offsetZone(sign, hh, mm string) *time.Location {
	off := atoi(hh)*3600 + atoi(mm)*60
	if off > 14*3600 {
		return nil
	}
	if sign == "-" {
		off = -off
	}
	return time.FixedZone("", off)
}

// sub returns submatch i of a FindStringSubmatchIndex result, "" if unset.
func sub(s string, m []int, i int) string {
	if 2*i+1 >= len(m) || m[2*i] < 0 {
		return ""
	}
	return s[m[2*i]:m[2*i+1]]
}

func atoi(s string) int {
	if len(s) > 6 {
		return 0
	}
	n, _ := strconv.Atoi(s)
	return n
}

func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
