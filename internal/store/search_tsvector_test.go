package store

import (
	"context"
	"database/sql"
	"os"
	"strings"
	"testing"

	"github.com/postdesk/postdesk/internal/search"
)

// TestTsvectorText: the tsvector Postdesk builds from folded text is the
// one PostgreSQL's own parser makes of it (to_tsvector('simple') with
// setweight, joined by ||), word for word, position for position and
// weight for weight: for ordinary text, every script IndexText keeps,
// text past the last position PostgreSQL counts, and a word repeated past
// the positions it keeps. The one known difference, the parser's reading
// of "3e8af" as a number and a word, is why schema 25 rebuilds the
// documents (TestSearchTsvectorMigration); it is checked here to be still
// there, so that this test says when the parser changes.
func TestTsvectorText(t *testing.T) {
	url := os.Getenv("POSTDESK_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("POSTDESK_TEST_POSTGRES_URL is not set: skipping PostgreSQL (scripts/test starts one)")
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	long := strings.Repeat("order number 12345 shipped late again ", 3000) // 18,000 words
	cases := []struct {
		name                         string
		subject, people, notes, body string
	}{
		{"empty", "", "", "", ""},
		{"ordinary", "Printer jams again", "ann@x.test Ann Lee", "call her back", "The printer jams on page 2. The printer!"},
		{"scripts", "Ünïcödé façade ﬁle №5 ²", "Zoë Ø'Brien", "Привет мир", "日本語のテキスト 中文 한국어 ελληνικά עברית العربية ไทย 🎉 e\u0301"},
		{"apostrophes and backslashes", "it's O'Neil\\", "", `a\b 'quoted'`, `"x" \' ''`},
		{"repeated past the positions kept", "", "", "", strings.Repeat("again ", 400)},
		{"past the last position", "subject", "", "", long},
		{"only a body", "", "", "", "just the body"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			parts := []tsPart{
				{search.IndexText(c.subject, searchSubjectBytes), 'A'},
				{search.IndexText(c.people, searchPeopleBytes), 'B'},
				{search.IndexText(c.notes, searchPartBytes), 'C'},
				{search.IndexText(c.body, 1<<20), 'D'},
			}
			ours := tsvectorText(parts...)
			var same bool
			var theirs, diff string
			err := db.QueryRowContext(ctx, `SELECT t = $1::tsvector, t::text, (SELECT COALESCE(string_agg(x, ' '), '') FROM (
					SELECT unnest(tsvector_to_array(t)) EXCEPT SELECT unnest(tsvector_to_array($1::tsvector))) d(x))
				FROM (SELECT setweight(to_tsvector('simple', $2::text), 'A') || setweight(to_tsvector('simple', $3::text), 'B') ||
					setweight(to_tsvector('simple', $4::text), 'C') || setweight(to_tsvector('simple', $5::text), 'D') AS t) s`,
				ours, parts[0].text, parts[1].text, parts[2].text, parts[3].text).Scan(&same, &theirs, &diff)
			if err != nil {
				t.Fatal(err)
			}
			if !same {
				t.Errorf("ours differs from PostgreSQL's (words only theirs: %q)\nours:   %.600s\ntheirs: %.600s", diff, ours, theirs)
			}
		})
	}
	var split string
	if err := db.QueryRowContext(ctx, `SELECT to_tsvector('simple', '3e8af')::text`).Scan(&split); err != nil || split != "'3e8':1 'af':2" {
		t.Errorf("PostgreSQL's parser made %s of 3e8af (%v), not the number and the word schema 25 is written for", split, err)
	}
	if ours := tsvectorText(tsPart{"3e8af", 'D'}); ours != "'3e8af':1" {
		t.Errorf("ours of 3e8af = %s", ours)
	}
	// Appended, as a growing document is: the stored tsvector || what joins.
	var same bool
	first := tsvectorText(tsPart{"printer jams", 'A'}, tsPart{"ann", 'B'})
	more := tsvectorText(tsPart{"bea", 'B'}, tsPart{"toner", 'C'}, tsPart{"printer again", 'D'})
	err = db.QueryRowContext(ctx, `SELECT $1::tsvector || $2::tsvector = $3::tsvector`, first, more,
		tsvectorText(tsPart{"printer jams", 'A'}, tsPart{"ann", 'B'}, tsPart{"bea", 'B'}, tsPart{"toner", 'C'}, tsPart{"printer again", 'D'})).Scan(&same)
	if err != nil || !same {
		t.Errorf("appended tsvectors differ from the whole (%v)", err)
	}
}
