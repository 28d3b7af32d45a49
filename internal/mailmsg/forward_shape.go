package mailmsg

import "strings"

// language is the language of a block: the marker's, else the one most of
// the labels are in (an English marker counts only over English labels:
// Gmail leaves "Forwarded message" untranslated in some languages). A label that is also English ("Cc", "Date") is no
// evidence of another language, but one that is only another language's
// ("Saatja", "Gönderen") is: Gmail translates some labels and leaves the
// others English, and then the translated ones tell the language.
func (b *fwdBlock) language() string {
	if b.markerLang != "" && b.markerLang != "en" {
		return b.markerLang
	}
	foreign := map[string]bool{}
	for _, k := range b.keys {
		hits := labels[k]
		if hasLang(hits, "en") {
			continue
		}
		for _, h := range hits {
			foreign[h.lang] = true
		}
	}
	if len(foreign) == 0 && b.markerLang != "" {
		return b.markerLang // an English marker over English labels
	}
	best, n := "", 0
	for _, l := range fwdLangs {
		if (len(foreign) == 0 || foreign[l]) && b.score[l] > n {
			best, n = l, b.score[l]
		}
	}
	return best
}

// mixedLabels says whether a block in lang also has English labels that
// are not lang's: Gmail's partly translated blocks.
func (b *fwdBlock) mixedLabels(lang string) bool {
	if lang == "en" || lang == "" {
		return false
	}
	for _, k := range b.keys {
		if hits := labels[k]; hasLang(hits, "en") && !hasLang(hits, lang) {
			return true
		}
	}
	return false
}

func hasLang(hits []labelHit, lang string) bool {
	for _, h := range hits {
		if h.lang == lang {
			return true
		}
	}
	return false
}

// shape names the layout of a block found in lines (see the Shape
// constants); the most distinctive trait wins.
func (b *fwdBlock) shape(lines []fwdLine, lang string) string {
	first := b.start
	if b.kind != mkNone && first+1 < b.end {
		first++ // the marker line
	}
	var fullWidth, tab bool
	for k := first; k < b.end && k < len(lines); k++ {
		if lines[k].split {
			return ShapeOneLine
		}
		raw := lines[k].raw
		fullWidth = fullWidth || strings.Contains(raw, "：")
		if i := strings.IndexByte(raw, ':'); i >= 0 && strings.HasPrefix(strings.TrimLeft(raw[i+1:], " "), "\t") {
			tab = true
		}
	}
	switch {
	case strings.Contains(strings.ToLower(b.vals[fFrom]), "mailto:"):
		return ShapeMailto
	case fullWidth:
		return ShapeFullWidth
	case tab:
		return ShapeTabbed
	case b.mixedLabels(lang):
		return ShapeMixedLabels
	case b.depth > 0:
		return ShapeQuotedBlock
	}
	return ShapeHeaderBlock
}
