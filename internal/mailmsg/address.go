package mailmsg

import (
	"mime"
	"net/mail"
	"strings"
	"unicode"
)

// Address is one mailbox of an address field (RFC 5322 3.4).
type Address struct {
	Name    string // decoded display name
	Address string // addr-spec as written, trimmed; use NormalizeAddress for comparisons
}

// String formats the address for display, "Name <addr>" or "addr".
// Quoted is the address as a list can be read back (net/mail, a form's
// comma-separated field): the name quoted when it holds a comma or another
// special character ("Boss, The" <boss@x>), else as String.
func (a Address) Quoted() string {
	if a.Name == "" || !strings.ContainsAny(a.Name, `,;:"<>()[]@\`) {
		return a.String()
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(a.Name) + `" <` + a.Address + ">"
}

func (a Address) String() string {
	if a.Name == "" {
		return a.Address
	}
	return a.Name + " <" + a.Address + ">"
}

// NormalizeAddress lowercases and trims an address for comparison ("" if not
// plausible: it needs one local part and a domain around an "@" and no
// spaces or control characters). Surrounding angle brackets and a "mailto:"
// prefix are removed.
func NormalizeAddress(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "mailto:"), "MAILTO:")
	s = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(s, "<"), ">"))
	i := strings.LastIndexByte(s, '@')
	if i <= 0 || i == len(s)-1 || len(s) > 320 {
		return ""
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == '<' || r == '>' || r == ',' {
			return ""
		}
	}
	domain := s[i+1:]
	if strings.ContainsAny(domain, "@\"()[]\\;:") && !(strings.HasPrefix(domain, "[") && strings.HasSuffix(domain, "]")) {
		return ""
	}
	if strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		return ""
	}
	return strings.ToLower(s)
}

// parseAddressList parses an address field: with net/mail's RFC 5322
// parser (the one go-message's mail package wraps) using our lenient
// encoded-word decoder, and when that fails, element by element with a
// tolerant splitter so "Bob <bob@x>", bare "bob@x" or "bob@x (Bob)" still
// yield addresses. Group syntax is flattened.
func (p *parser) parseAddressList(field, v string) []Address {
	v = strings.TrimSpace(fixUTF8(v))
	if v == "" {
		return nil
	}
	ap := mail.AddressParser{WordDecoder: &mime.WordDecoder{CharsetReader: headerCharsetReader(p.problem)}}
	if list, err := ap.ParseList(v); err == nil {
		out := make([]Address, 0, len(list))
		for _, a := range list {
			out = append(out, p.address(a.Name, a.Address))
		}
		return out
	}
	var out []Address
	carry := "" // a piece without "@" is a display name cut at an unquoted comma
	for _, part := range splitAddresses(v) {
		part = strings.TrimSpace(part)
		if carry != "" {
			part = carry + ", " + part
			carry = ""
		}
		if part == "" {
			continue
		}
		if !strings.Contains(part, "@") {
			carry = part
			continue
		}
		if a, err := ap.Parse(part); err == nil {
			out = append(out, p.address(a.Name, a.Address))
			continue
		}
		// Comments where net/mail does not take them (RFC 5322 3.2.2
		// allows CFWS around every token).
		bare := stripComments(part)
		if a, err := ap.Parse(bare); err == nil {
			out = append(out, p.address(a.Name, a.Address))
		} else if a, ok := tolerantAddress(part); ok {
			out = append(out, p.address(a.Name, a.Address))
		} else if a, ok := tolerantAddress(bare); ok {
			out = append(out, p.address(a.Name, a.Address))
		}
	}
	if len(out) == 0 {
		p.problem(field + ": no address could be read from " + quote(truncate(v, 80)))
	}
	return out
}

func (p *parser) address(name, addr string) Address {
	name = strings.TrimSpace(name)
	if strings.Contains(name, "=?") {
		name = p.decodeWords(name) // encoded-words inside a quoted string
	}
	// A decoded name may carry CR, LF or NUL ("=?utf-8?q?Jane=0D=0ABcc:_x?="):
	// it is one line of text wherever it goes next (a page, a reply's To).
	name = strings.Trim(oneLine(dropControls(name)), `"' `)
	if strings.EqualFold(name, addr) {
		name = ""
	}
	return Address{Name: name, Address: strings.TrimSpace(addr)}
}

// dropControls removes control characters other than white space (NUL,
// ESC, DEL...), as the store would: "Fran\x00k" is "Frank", while CR, LF
// and tabs stay for oneLine to make spaces of.
func dropControls(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && !unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
}

// splitAddresses splits on commas and semicolons outside quotes, comments
// and angle brackets; a group's "name:" prefix is dropped.
func splitAddresses(v string) []string {
	var parts []string
	var quoted, angle bool
	depth, start := 0, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\':
			i++
		case c == '"' && depth == 0:
			quoted = !quoted
		case quoted:
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth > 0:
		case c == '<':
			angle = true
		case c == '>':
			angle = false
		case (c == ',' || c == ';') && !angle:
			parts = append(parts, v[start:i])
			start = i + 1
		case c == ':' && !angle:
			// group "name:"; a colon inside an address without <> is kept
			if !strings.Contains(v[start:i], "@") {
				start = i + 1
			}
		}
	}
	return append(parts, v[start:])
}

// tolerantAddress reads one address the strict parser refused.
func tolerantAddress(s string) (Address, bool) {
	if i := strings.LastIndexByte(s, '<'); i >= 0 {
		j := strings.IndexByte(s[i:], '>')
		if j < 0 {
			j = len(s) - i
		}
		addr := strings.TrimSpace(s[i+1 : i+j])
		if NormalizeAddress(addr) == "" {
			return Address{}, false
		}
		return Address{Name: cleanName(s[:i]), Address: addr}, true
	}
	fields := strings.Fields(s)
	for k, f := range fields {
		f = strings.Trim(f, `"'(),;[]`)
		if NormalizeAddress(f) != "" {
			rest := append(append([]string{}, fields[:k]...), fields[k+1:]...)
			return Address{Name: cleanName(strings.Join(rest, " ")), Address: f}, true
		}
	}
	return Address{}, false
}

// cleanName is a display name without the quotes, angle brackets or
// enclosing parentheses (an old "addr (Name)" comment) around it; a name's
// own parentheses stay ("Jane (home)" lost its closing one).
func cleanName(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '"' {
		// A whole quoted string (Address.Quoted): its escapes undone.
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			switch c := s[i]; {
			case c == '\\' && i+1 < len(s):
				i++
				b.WriteByte(s[i])
			case c == '"':
				if i == len(s)-1 {
					return b.String()
				}
				i = len(s) // a quote inside: not one quoted string
			default:
				b.WriteByte(c)
			}
		}
	}
	s = strings.Trim(s, `"'<> `)
	if strings.HasPrefix(s, "(") && strings.HasSuffix(s, ")") && strings.Count(s, "(") == 1 && strings.Count(s, ")") == 1 {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	s = strings.Trim(s, `"' `)
	return strings.ReplaceAll(s, `\"`, `"`)
}

// StoredAddresses reads a list as Postdesk stores one ("Name <addr>,
// addr": names unquoted, so a comma in a name splits it, and the part
// without an address is skipped; net/mail refuses such a list whole).
func StoredAddresses(list string) []Address {
	var out []Address
	pending := "" // a name's start, cut off at its comma
	for _, part := range splitAddresses(list) {
		a, ok := tolerantAddress(part)
		if !ok {
			pending += part + ","
			continue
		}
		if pending != "" {
			if b, ok := tolerantAddress(pending + part); ok && b.Address == a.Address {
				a = b
			}
			pending = ""
		}
		out = append(out, a)
	}
	return out
}

// AddressesIn returns the normalized addresses of a stored list
// (StoredAddresses).
func AddressesIn(list string) []string {
	var out []string
	for _, a := range StoredAddresses(list) {
		if n := NormalizeAddress(a.Address); n != "" {
			out = append(out, n)
		}
	}
	return out
}
