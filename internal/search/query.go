package search

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds of a query.
const (
	MaxQueryBytes = 1000 // longer input is refused, not cut
	MaxTerms      = 32   // words, phrases and filters together
	// autoPrefixRunes is the shortest last word that also matches as a
	// prefix ("dash" finds "dashboard"); shorter ones would match too much.
	autoPrefixRunes = 3
)

// Field says which part of a ticket a term must be found in.
type Field int

// Fields.
const (
	FieldAny  Field = iota // subject, requester and senders, messages, notes
	FieldFrom              // the requester and the senders of incoming mail
)

// Term is one full-text condition: a word (one token) or a phrase (its
// tokens next to each other, in order).
type Term struct {
	Tokens []string
	Prefix bool // the last token also matches longer words that start with it
	Not    bool // the ticket must not contain it
	Field  Field
}

// Assignee filter values besides an email address.
const (
	AssigneeMe   = "me"
	AssigneeNone = "none"
)

// Query is a parsed search: every Term and every filter must hold (AND);
// several values of one filter are alternatives (OR).
type Query struct {
	Terms     []Term
	Statuses  []string // open, pending, solved
	Mailboxes []string // an address (exact) or a part of one
	// Assignee is AssigneeMe, AssigneeNone or an email address; "" when
	// the query does not filter on it.
	Assignee string
	// TicketID is set when the whole query is a ticket number ("#123" or
	// "123"): that ticket comes first, then tickets that contain the number.
	TicketID int64
}

// IsZero reports whether the query selects everything (an empty search).
func (q Query) IsZero() bool {
	return len(q.Terms) == 0 && len(q.Statuses) == 0 && len(q.Mailboxes) == 0 && q.Assignee == "" && q.TicketID == 0
}

// Error is a query that cannot be parsed; its message is a sentence for
// the person who typed it.
type Error struct {
	Msg string
}

func (e *Error) Error() string { return e.Msg }

func errorf(format string, args ...any) *Error { return &Error{Msg: fmt.Sprintf(format, args...)} }

// Statuses a status: filter accepts.
var statuses = []string{"open", "pending", "solved"}

// Parse reads the search syntax shared by the web list and the API:
//
//	dashboard refund     both words (the last also as a prefix: refunds)
//	dash*                a prefix
//	"card declined"      a phrase
//	-spam  -"out of office"   without
//	from:alice  from:alice@example.com  from:"Alice Smith"
//	status:open|pending|solved   mailbox:support@example.com (or a part)
//	assignee:me|none|agent@example.com
//	#123  or  123        ticket 123 first
//
// Words are matched after the folding of Tokens (case and accents do not
// matter). Anything else is an *Error that says what to change.
func Parse(input string) (Query, error) {
	var q Query
	s := strings.TrimSpace(strings.ReplaceAll(input, "\x00", "")) // as stored text (store.CleanText)
	if len(s) > MaxQueryBytes {
		return q, errorf("The search is too long (%d characters); keep it under %d.", utf8.RuneCountInString(s), MaxQueryBytes)
	}
	if id, ok := ticketNumber(s); ok {
		q.TicketID = id
		q.Terms = []Term{{Tokens: []string{strconv.FormatInt(id, 10)}}}
		return q, nil
	}
	p := parser{s: s}
	lastWord := -1 // index in q.Terms of the last bare word, if it ended the query
	items := 0
	for {
		it, err := p.next()
		if err != nil {
			return Query{}, err
		}
		if it == nil {
			break
		}
		if items++; items > MaxTerms {
			return Query{}, errorf("The search has more than %d words and filters; use fewer.", MaxTerms)
		}
		lastWord = -1
		if it.not && it.name != "" && it.name != "from" {
			return Query{}, errorf("-%s: cannot be negated; only words, phrases and from: can.", it.name)
		}
		switch it.name {
		case "":
			toks := Tokens(it.value)
			if len(toks) == 0 {
				continue // punctuation only: nothing to look for
			}
			q.Terms = append(q.Terms, Term{Tokens: toks, Not: it.not, Prefix: it.star})
			if !it.not && !it.quoted && !it.star {
				lastWord = len(q.Terms) - 1
			}
		case "from":
			toks := Tokens(it.value)
			if len(toks) == 0 {
				return Query{}, errorf("from: needs an address, a name or a part of one, as in from:alice@example.com.")
			}
			// A part of an address finds the whole one: from:ali finds alice.
			q.Terms = append(q.Terms, Term{Tokens: toks, Not: it.not, Prefix: !it.quoted || it.star, Field: FieldFrom})
		case "status":
			v := strings.ToLower(it.value)
			if !contains(statuses, v) {
				return Query{}, errorf("status: must be open, pending or solved, not %q.", it.value)
			}
			if !contains(q.Statuses, v) {
				q.Statuses = append(q.Statuses, v)
			}
		case "mailbox":
			v := strings.ToLower(strings.TrimSpace(it.value))
			if v == "" {
				return Query{}, errorf("mailbox: needs a support address or a part of one, as in mailbox:support@example.com.")
			}
			q.Mailboxes = append(q.Mailboxes, v)
		case "assignee":
			v := strings.ToLower(strings.TrimSpace(it.value))
			switch {
			case v == AssigneeMe || v == AssigneeNone || strings.Contains(v, "@"):
			default:
				return Query{}, errorf("assignee: must be me, none or an agent's email address, not %q.", it.value)
			}
			if q.Assignee != "" && q.Assignee != v {
				return Query{}, errorf("assignee: is given twice; a ticket has one assignee.")
			}
			q.Assignee = v
		}
	}
	if lastWord >= 0 {
		t := &q.Terms[lastWord]
		last := t.Tokens[len(t.Tokens)-1]
		if utf8.RuneCountInString(last) >= autoPrefixRunes && !allDigits(last) {
			t.Prefix = true
		}
	}
	if q.IsZero() && s != "" {
		return Query{}, errorf("There is nothing to search for in %q: use letters or digits.", s)
	}
	if len(q.Terms) > 0 && !hasPositive(q) {
		// A search made only of exclusions is allowed with a filter
		// (status:open -spam); alone it would list almost everything.
		if len(q.Statuses) == 0 && len(q.Mailboxes) == 0 && q.Assignee == "" {
			return Query{}, errorf("Add a word to look for: a search cannot be only words to leave out.")
		}
	}
	return q, nil
}

func hasPositive(q Query) bool {
	for _, t := range q.Terms {
		if !t.Not {
			return true
		}
	}
	return false
}

// ticketNumber recognises "#123" and "123".
func ticketNumber(s string) (int64, bool) {
	d := strings.TrimPrefix(s, "#")
	if d == "" || len(d) > 18 || !allDigits(d) {
		return 0, false
	}
	id, err := strconv.ParseInt(d, 10, 64)
	return id, err == nil && id > 0
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// item is one space-separated part of a query.
type item struct {
	not    bool   // a leading '-'
	name   string // a filter name, lower case ("" for a word or phrase)
	value  string
	quoted bool // the value was in double quotes
	star   bool // the value ended with '*'
}

// filters are the names an item may have.
var filters = []string{"from", "status", "mailbox", "assignee"}

type parser struct {
	s   string
	pos int
}

// next returns the next item, nil at the end.
func (p *parser) next() (*item, error) {
	for p.pos < len(p.s) {
		r, size := utf8.DecodeRuneInString(p.s[p.pos:])
		if !unicode.IsSpace(r) && !unicode.IsControl(r) {
			break
		}
		p.pos += size
	}
	if p.pos >= len(p.s) {
		return nil, nil
	}
	it := &item{}
	if p.s[p.pos] == '-' && p.pos+1 < len(p.s) && !isSpaceAt(p.s, p.pos+1) {
		it.not = true
		p.pos++
	}
	// A filter is letters then ':' then a value; anything else with a
	// colon (10:30, https://…, "Error: disk full") is text.
	if name, rest, ok := filterPrefix(p.s[p.pos:]); ok && rest != "" && !isSpaceAt(rest, 0) && !strings.HasPrefix(rest, "//") {
		if !contains(filters, name) {
			return nil, errorf("%q is not a filter; use from:, status:, mailbox: or assignee:, or put the text in quotes to search for it (\"%s:%s\").",
				name+":", name, firstField(rest))
		}
		it.name = name
		p.pos += len(name) + 1
	} else if ok && contains(filters, name) {
		return nil, errorf("%s: needs a value right after the colon, as in %s.", name, filterExample(name))
	}
	if p.s[p.pos] == '"' {
		start := p.pos
		end := strings.IndexByte(p.s[p.pos+1:], '"')
		if end < 0 {
			return nil, errorf("The quote at character %d is not closed: add the closing \" or remove it.", utf8.RuneCountInString(p.s[:start])+1)
		}
		it.value = p.s[p.pos+1 : p.pos+1+end]
		it.quoted = true
		p.pos += end + 2
		if p.pos < len(p.s) && p.s[p.pos] == '*' {
			it.star = true
			p.pos++
		}
		// Text glued to the closing quote ("abc"def) belongs to the next item.
		return it, nil
	}
	start := p.pos
	for p.pos < len(p.s) && !isSpaceAt(p.s, p.pos) {
		_, size := utf8.DecodeRuneInString(p.s[p.pos:])
		p.pos += size
	}
	it.value = p.s[start:p.pos]
	if strings.HasSuffix(it.value, "*") {
		it.star = true
	}
	return it, nil
}

// filterPrefix splits "name:rest" when name is ASCII letters.
func filterPrefix(s string) (name, rest string, ok bool) {
	i := 0
	for i < len(s) && (s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z') {
		i++
	}
	if i == 0 || i >= len(s) || s[i] != ':' {
		return "", "", false
	}
	return strings.ToLower(s[:i]), s[i+1:], true
}

func isSpaceAt(s string, i int) bool {
	r, _ := utf8.DecodeRuneInString(s[i:])
	return unicode.IsSpace(r) || unicode.IsControl(r)
}

func firstField(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

func filterExample(name string) string {
	switch name {
	case "from":
		return "from:alice@example.com"
	case "status":
		return "status:open"
	case "mailbox":
		return "mailbox:support@example.com"
	default:
		return "assignee:me"
	}
}
