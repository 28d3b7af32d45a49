package mailmsg

import "strings"

// mayHoldForward is the finder's cheap first look at a body (text, or
// HTML source): could it hold a forward's header block? Every block the
// finder accepts has a From label ("From:", "Von:", "差出人：" ...) at the
// start of a line, after quote marks, after a tag or after a marker's
// dashes, or mutt's "Forwarded message from" marker; a body without one
// is not rendered, split into lines or searched. It looks only at the few
// bytes before each colon, so it is linear and allocates nothing on
// ordinary mail. When unsure (an HTML entity before a colon) it says yes.
// The Outlook for Mac "wrote:" layout has no label: findInline checks its
// forward subject prefix separately.
func mayHoldForward(s string) bool {
	for _, colon := range []string{":", "："} {
		for i := 0; i < len(s); {
			j := strings.Index(s[i:], colon)
			if j < 0 {
				break
			}
			if labelBefore(s, i+j) {
				return true
			}
			i += j + len(colon)
		}
	}
	// mutt: "----- Forwarded message from Ann <a@x> -----"
	return strings.Contains(s, "orwarded message from") || strings.Contains(s, "ORWARDED MESSAGE FROM")
}

// maxLabelBytes is the longest label, in bytes, with some room for the
// spaces, asterisks and "&nbsp;" around it.
const maxLabelBytes = 48

// labelBefore says whether the text before the colon at c, back to the
// start of its line, a tag, a quote mark or dashes, may be a From label.
func labelBefore(s string, c int) bool {
	// "<b>From</b>:": step back over up to three tags right before the colon.
	for range 3 {
		if c == 0 || s[c-1] != '>' {
			break
		}
		lt := strings.LastIndexByte(s[max(0, c-200):c], '<')
		if lt < 0 {
			break
		}
		c = max(0, c-200) + lt
	}
	if c == 0 || c > 0 && s[c-1] >= '0' && s[c-1] <= '9' {
		return false // "10:13", "Item 12:"
	}
	start := c
	for start > 0 && !labelStop[s[start-1]] {
		if c-start > maxLabelBytes {
			return false // no line start or tag within reach: mid-sentence
		}
		start--
	}
	seg := strings.Trim(s[start:c], " \t*_")
	if strings.HasSuffix(seg, "&nbsp;") {
		seg = strings.TrimRight(strings.TrimSuffix(seg, "&nbsp;"), " ")
	}
	if seg == "" || strings.IndexByte(seg, '&') >= 0 {
		return seg != "" // an entity: maybe an encoded label
	}
	for k := 0; k < len(seg); k++ {
		if b := seg[k]; b >= '0' && b <= '9' || b == '<' || b == '=' || b == '"' || b == '/' {
			return false // labels have none of these: a time, a tag attribute, a URL
		}
	}
	hits := labels[strings.ToLower(normSpace(seg))]
	for _, h := range hits {
		if h.field == fFrom {
			return true
		}
	}
	return false
}

// labelStop marks the bytes a label starts after: a line break, the end of
// a tag or a quote mark, a marker's dashes.
var labelStop = [256]bool{'\n': true, '\r': true, '>': true, '-': true}
