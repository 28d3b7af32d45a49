package mailmsg

import (
	"strings"
	"unicode"
)

// The language tables of forward detection: the labels of the header
// blocks mail clients write above a forwarded or quoted message, the marker
// lines that introduce them, the subject prefixes of replies and forwards,
// and the month names of their dates. They are read-only after package
// initialisation.

// fwdField is a field of a forwarded header block.
type fwdField int

const (
	fNone fwdField = iota
	fFrom
	fTo
	fCc
	fBcc
	fDate // Date: or Sent: and their translations
	fSubject
	fReplyTo
	fOther // shown by some clients, not kept: Importance, Attachments, User-Agent ...
)

// fwdLangs is the order in which languages win ties.
var fwdLangs = []string{"en", "de", "fr", "es", "it", "nl", "pt", "pl", "sv", "no", "da", "fi", "cs", "sk", "hu", "ro", "hr", "ru", "uk", "tr", "et", "ja"}

// labelTable lists, per language, the labels of each field, "|"-separated.
// "sent" labels are Outlook's (Sent:, Gesendet: ...), "date" labels those of
// Gmail, Apple Mail and Thunderbird.
var labelTable = map[string]struct{ from, to, cc, bcc, sent, date, subject string }{
	"en": {"from", "to", "cc", "bcc", "sent", "date", "subject"},
	"de": {"von", "an", "cc|kopie", "bcc|blindkopie", "gesendet", "datum", "betreff"},
	"fr": {"de", "à|a|pour", "cc|copie", "cci|bcc", "envoyé|envoyé le|date d'envoi", "date", "objet|sujet"},
	"es": {"de", "para|a", "cc|con copia", "cco|bcc", "enviado|enviado el", "fecha|date", "asunto"},
	"it": {"da|mittente", "a", "cc", "ccn|bcc", "inviato", "data", "oggetto"},
	"nl": {"van", "aan", "cc", "bcc", "verzonden", "datum", "onderwerp"},
	"pt": {"de", "para", "cc", "cco|bcc", "enviado|enviada|enviado em", "data", "assunto"},
	"pl": {"od|nadawca", "do|adresat", "dw|kopia", "udw|ukryta kopia", "wysłano", "data", "temat"},
	"sv": {"från", "till", "kopia|cc", "hemlig kopia|bcc", "skickat", "datum", "ämne"},
	"no": {"fra", "til", "kopi|cc", "blindkopi|bcc", "sendt", "dato", "emne"},
	"da": {"fra", "til", "cc|kopi", "bcc", "sendt", "dato", "emne"},
	"fi": {"lähettäjä", "vastaanottaja", "kopio", "piilokopio", "lähetetty", "päivämäärä|päiväys", "aihe"},
	"cs": {"od", "komu", "kopie|cc", "skrytá kopie|bcc", "odesláno", "datum", "předmět"},
	"sk": {"od", "komu", "kópia|cc", "skrytá kópia|bcc", "odoslané", "dátum", "predmet"},
	"hu": {"feladó", "címzett", "másolatot kap|másolat|cc", "titkos másolat|bcc", "elküldve", "dátum|időpont", "tárgy"},
	"ro": {"de la|de|expeditor", "către|catre|pentru", "cc", "bcc", "trimis", "data|dată", "subiect"},
	"hr": {"šalje|od", "prima|za", "kopija|cc", "bcc", "poslano", "datum", "predmet"},
	"ru": {"от|отправитель|от кого", "кому", "копия|cc", "скрытая копия|bcc", "отправлено", "дата", "тема"},
	"uk": {"від|відправник|від кого", "кому", "копія|cc", "прихована копія|bcc", "надіслано", "дата", "тема"},
	"tr": {"kimden|gönderen", "kime", "bilgi|cc", "gizli|bcc", "gönderildi|gönderilme", "tarih", "konu"},
	"et": {"saatja|kellelt", "saaja|kellele", "koopia|cc", "pimekoopia|bcc", "saadetud", "kuupäev", "teema"},
	"ja": {"差出人|送信者|送信元", "宛先|送信先", "cc", "bcc", "送信日時", "日付|日時", "件名"},
}

// otherLabels are fields a block may show that forward detection skips:
// Outlook's Importance and Attachments lines (translated), and the extra
// header fields mutt and others copy.
const otherLabels = "importance|wichtigkeit|importancia|priorità|importanza|urgentie|prioriteit|importância|ważność|prioritet|prioriteetti|důležitost|dôležitosť|fontosság|importanță|važnost|важность|важливість|önem|" +
	"attachments|anlagen|pièces jointes|datos adjuntos|allegati|bijlagen|anexos|załączniki|bifogade filer|vedlegg|vedhæftede filer|liitteet|přílohy|prílohy|mellékletek|atașări|privitci|вложения|вкладення|ekler|" +
	"user-agent|x-mailer|message-id|organization|organisation|mail-followup-to|in-reply-to|references|mime-version|content-type"

// labelHit is one reading of a label: its field and language.
type labelHit struct {
	field fwdField
	lang  string
	sent  bool
}

// labels maps a lowercased label (without colon) to its readings.
var labels = func() map[string][]labelHit {
	m := map[string][]labelHit{}
	add := func(list string, f fwdField, lang string, sent bool) {
		for l := range strings.SplitSeq(list, "|") {
			m[l] = append(m[l], labelHit{f, lang, sent})
		}
	}
	for _, lang := range fwdLangs {
		t := labelTable[lang]
		add(t.from, fFrom, lang, false)
		add(t.to, fTo, lang, false)
		add(t.cc, fCc, lang, false)
		add(t.bcc, fBcc, lang, false)
		add(t.sent, fDate, lang, true)
		add(t.date, fDate, lang, false)
		add(t.subject, fSubject, lang, false)
	}
	m["reply-to"] = append(m["reply-to"], labelHit{fReplyTo, "en", false})
	m["antwort an"] = append(m["antwort an"], labelHit{fReplyTo, "de", false})
	m["répondre à"] = append(m["répondre à"], labelHit{fReplyTo, "fr", false})
	m["rispondi a"] = append(m["rispondi a"], labelHit{fReplyTo, "it", false}) // Thunderbird
	for l := range strings.SplitSeq(otherLabels, "|") {
		if _, ok := m[l]; !ok {
			m[l] = []labelHit{{field: fOther}}
		}
	}
	return m
}()

// markerKind says what a marker line announces.
type markerKind int

const (
	mkNone      markerKind = iota
	mkForward              // an explicit forward ("Forwarded message", "Begin forwarded message")
	mkApple                // Apple Mail's "Begin forwarded message:"
	mkOriginal             // "Original Message": Outlook and Thunderbird write it for replies and forwards alike
	mkSeparator            // a rule: dashes, underscores (Outlook on the web), or an unknown "-----Text-----"
)

// markerPhrases maps a marker line's words (lowercase, without the
// surrounding dashes and colon) to its kind and language.
var markerPhrases = func() map[string]struct {
	kind markerKind
	lang string
} {
	m := map[string]struct {
		kind markerKind
		lang string
	}{}
	for _, e := range []struct {
		lang                 string
		fwd, apple, original string
	}{
		{"en", "forwarded message|forwarded e-mail|forwarded email", "begin forwarded message", "original message"},
		{"de", "weitergeleitete nachricht|weitergeleitete e-mail", "anfang der weitergeleiteten nachricht|anfang der weitergeleiteten e-mail", "ursprüngliche nachricht|original-nachricht|originalnachricht"},
		{"fr", "message transféré|courriel transféré|message transmis", "début du message réexpédié|début du message transféré", "message d'origine|message d’origine|message original"},
		{"es", "mensaje reenviado", "inicio del mensaje reenviado|comienzo del mensaje reenviado", "mensaje original"},
		{"it", "messaggio inoltrato", "inizio messaggio inoltrato", "messaggio originale"},
		{"nl", "doorgestuurd bericht", "begin doorgestuurd bericht", "oorspronkelijk bericht|origineel bericht"},
		{"pt", "mensagem encaminhada|mensagem reencaminhada", "início da mensagem reencaminhada|início da mensagem encaminhada", "mensagem original"},
		{"pl", "przekazana wiadomość|przesłana wiadomość", "początek przekazywanej wiadomości|początek przekazanej wiadomości", "wiadomość oryginalna|oryginalna wiadomość"},
		{"sv", "vidarebefordrat meddelande|vidarebefordrat brev", "början av vidarebefordrat brev|början av vidarebefordrat meddelande", "ursprungligt meddelande|originalmeddelande"},
		{"no", "videresendt melding", "begynnelse på videresendt melding|start på videresendt melding", "opprinnelig melding|original melding"},
		{"da", "videresendt meddelelse|videresendt besked", "start på videresendt besked|begyndelse på videresendt meddelelse", "oprindelig meddelelse|original meddelelse"},
		{"fi", "välitetty viesti", "välitetty viesti alkaa|välitetyn viestin alku", "alkuperäinen viesti"},
		{"cs", "přeposlaná zpráva|přeposlaná zpráva", "začátek přeposlané zprávy", "původní zpráva|původní e-mailová zpráva"},
		{"sk", "preposlaná správa", "začiatok preposlanej správy", "pôvodná správa"},
		{"hu", "továbbított üzenet|továbbított levél", "továbbított levél kezdete|továbbított üzenet kezdete", "eredeti üzenet"},
		{"ro", "mesaj redirecționat|mesaj redirecţionat|mesaj redirectionat|mesaj transmis", "începutul mesajului redirecționat|începutul mesajului redirecţionat", "mesaj original|mesajul original"},
		{"hr", "proslijeđena poruka|proslijeđena poruka", "početak proslijeđene poruke", "izvorna poruka|izvorni e-mail"},
		{"ru", "пересылаемое сообщение|пересланное сообщение", "начало переадресованного сообщения|начало пересылаемого сообщения", "исходное сообщение|оригинальное сообщение|original message"},
		{"uk", "переслане повідомлення|пересилане повідомлення", "початок пересланого повідомлення", "оригінальне повідомлення|вихідне повідомлення|початкове повідомлення"},
		{"et", "edastatud kiri|edasisaadetud kiri", "edasisaadetud kirja algus", "algne kiri"},
		{"ja", "転送メッセージ|転送されたメッセージ", "転送されたメッセージの始まり", "元のメッセージ|オリジナル メッセージ"},
		{"tr", "iletilen ileti|iletilen mesaj|yönlendirilmiş mesaj|yönlendirilen ileti", "iletilen mesajın başlangıcı|iletilen iletinin başlangıcı", "özgün ileti|orijinal mesaj|özgün mesaj"},
	} {
		for p := range strings.SplitSeq(e.fwd, "|") {
			if _, ok := m[p]; !ok {
				m[p] = struct {
					kind markerKind
					lang string
				}{mkForward, e.lang}
			}
		}
		for p := range strings.SplitSeq(e.apple, "|") {
			m[p] = struct {
				kind markerKind
				lang string
			}{mkApple, e.lang}
		}
		for p := range strings.SplitSeq(e.original, "|") {
			if _, ok := m[p]; !ok {
				m[p] = struct {
					kind markerKind
					lang string
				}{mkOriginal, e.lang}
			}
		}
	}
	return m
}()

// subjectKind is what a subject prefix says the message is.
type subjectKind int

const (
	subjNone subjectKind = iota
	subjReply
	subjForward
	subjVS // "VS:": a reply in Finnish, a forward in Danish and Norwegian
)

// subjectPrefixes maps a lowercased subject prefix (without colon) to its
// kind. Outlook translates them; Gmail, Apple Mail and Thunderbird mostly
// write "Re:" and "Fwd:".
var subjectPrefixes = func() map[string]subjectKind {
	m := map[string]subjectKind{"vs": subjVS}
	for p := range strings.SplitSeq("re|aw|antw|antwort|sv|odp|odpověď|r|rif|res|resp|ynt|cvp|vá|válasz|odg|отв|ответ|відп|回复|答复|回覆|απ", "|") {
		m[p] = subjReply
	}
	for p := range strings.SplitSeq("fw|fwd|wg|tr|rv|i|doorst|enc|pd|vb|vl|továbbítás|перес|пересл|ilt|i̇lt|转发|轉寄|転送|πρθ", "|") {
		m[p] = subjForward
	}
	return m
}()

// wroteVerbs are the verbs of reply attribution lines ("On ... Ann wrote:").
var wroteVerbs = []string{
	"wrote", "writes", "schrieb", "a écrit", "escribió", "ha scritto", "schreef", "escreveu",
	"napisał", "napisała", "skrev", "kirjoitti", "napsal", "napísal", "írta", "a scris",
	"je napisao", "je napisala", "написал", "написала", "написав", "yazdı",
}

// monthTable lists, per language, the forms of the twelve month names
// (nominative, genitive or partitive, abbreviations), "|"-separated.
var monthTable = map[string][12]string{
	"en": {"january|jan", "february|feb", "march|mar", "april|apr", "may", "june|jun", "july|jul", "august|aug", "september|sep|sept", "october|oct", "november|nov", "december|dec"},
	"de": {"januar|jan|jänner|jän", "februar|feb|feber", "märz|mär|mrz", "april|apr", "mai", "juni|jun", "juli|jul", "august|aug", "september|sep|sept", "oktober|okt", "november|nov", "dezember|dez"},
	"fr": {"janvier|janv", "février|févr|fév|fevrier", "mars", "avril|avr", "mai", "juin", "juillet|juil", "août|aout", "septembre|sept", "octobre|oct", "novembre|nov", "décembre|déc|decembre"},
	"es": {"enero|ene", "febrero|feb", "marzo|mar", "abril|abr", "mayo|may", "junio|jun", "julio|jul", "agosto|ago", "septiembre|setiembre|sept|sep|set", "octubre|oct", "noviembre|nov", "diciembre|dic"},
	"it": {"gennaio|gen", "febbraio|feb", "marzo|mar", "aprile|apr", "maggio|mag", "giugno|giu", "luglio|lug", "agosto|ago", "settembre|set", "ottobre|ott", "novembre|nov", "dicembre|dic"},
	"nl": {"januari|jan", "februari|feb", "maart|mrt|mar", "april|apr", "mei", "juni|jun", "juli|jul", "augustus|aug", "september|sep|sept", "oktober|okt", "november|nov", "december|dec"},
	"pt": {"janeiro|jan", "fevereiro|fev", "março|mar", "abril|abr", "maio|mai", "junho|jun", "julho|jul", "agosto|ago", "setembro|set", "outubro|out", "novembro|nov", "dezembro|dez"},
	"pl": {"styczeń|stycznia|sty", "luty|lutego|lut", "marzec|marca|mar", "kwiecień|kwietnia|kwi", "maj|maja", "czerwiec|czerwca|cze", "lipiec|lipca|lip", "sierpień|sierpnia|sie", "wrzesień|września|wrz", "październik|października|paź", "listopad|listopada|lis", "grudzień|grudnia|gru"},
	"sv": {"januari|jan", "februari|feb", "mars|mar", "april|apr", "maj", "juni|jun", "juli|jul", "augusti|aug", "september|sep|sept", "oktober|okt", "november|nov", "december|dec"},
	"no": {"januar|jan", "februar|feb", "mars|mar", "april|apr", "mai", "juni|jun", "juli|jul", "august|aug", "september|sep", "oktober|okt", "november|nov", "desember|des"},
	"da": {"januar|jan", "februar|feb", "marts|mar", "april|apr", "maj", "juni|jun", "juli|jul", "august|aug", "september|sep", "oktober|okt", "november|nov", "december|dec"},
	"fi": {"tammikuu|tammikuuta|tammik", "helmikuu|helmikuuta|helmik", "maaliskuu|maaliskuuta|maalisk", "huhtikuu|huhtikuuta|huhtik", "toukokuu|toukokuuta|toukok", "kesäkuu|kesäkuuta|kesäk", "heinäkuu|heinäkuuta|heinäk", "elokuu|elokuuta|elok", "syyskuu|syyskuuta|syysk", "lokakuu|lokakuuta|lokak", "marraskuu|marraskuuta|marrask", "joulukuu|joulukuuta|jouluk"},
	"cs": {"leden|ledna|led", "únor|února|úno", "březen|března|bře", "duben|dubna|dub", "květen|května|kvě", "červen|června|čvn", "červenec|července|čvc", "srpen|srpna|srp", "září|zář", "říjen|října|říj", "listopad|listopadu|lis", "prosinec|prosince|pro"},
	"sk": {"január|januára|jan", "február|februára|feb", "marec|marca|mar", "apríl|apríla|apr", "máj|mája", "jún|júna", "júl|júla", "august|augusta|aug", "september|septembra|sep", "október|októbra|okt", "november|novembra|nov", "december|decembra|dec"},
	"hu": {"január|jan", "február|febr|feb", "március|márc|már", "április|ápr", "május|máj", "június|jún", "július|júl", "augusztus|aug", "szeptember|szept|szep", "október|okt", "november|nov", "december|dec"},
	"ro": {"ianuarie|ian", "februarie|feb", "martie|mar", "aprilie|apr", "mai", "iunie|iun", "iulie|iul", "august|aug", "septembrie|sept|sep", "octombrie|oct", "noiembrie|nov|noi", "decembrie|dec"},
	"hr": {"siječanj|siječnja|sij", "veljača|veljače|velj", "ožujak|ožujka|ožu", "travanj|travnja|tra", "svibanj|svibnja|svi", "lipanj|lipnja|lip", "srpanj|srpnja|srp", "kolovoz|kolovoza|kol", "rujan|rujna|ruj", "listopad|listopada|lis", "studeni|studenoga|studenog|stu", "prosinac|prosinca|pro"},
	"ru": {"январь|января|янв", "февраль|февраля|фев", "март|марта|мар", "апрель|апреля|апр", "май|мая", "июнь|июня|июн", "июль|июля|июл", "август|августа|авг", "сентябрь|сентября|сен|сент", "октябрь|октября|окт", "ноябрь|ноября|ноя|нояб", "декабрь|декабря|дек"},
	"uk": {"січень|січня|січ", "лютий|лютого|лют", "березень|березня|бер", "квітень|квітня|квіт", "травень|травня|трав", "червень|червня|черв", "липень|липня|лип", "серпень|серпня|серп", "вересень|вересня|вер", "жовтень|жовтня|жовт", "листопад|листопада|лист", "грудень|грудня|груд"},
	"et": {"jaanuar|jaan", "veebruar|veebr", "märts", "aprill|apr", "mai", "juuni", "juuli", "august|aug", "september|sept", "oktoober|okt", "november|nov", "detsember|dets"},
	"tr": {"ocak|oca", "şubat|şub|subat", "mart|mar", "nisan|nis", "mayıs|may|mayis", "haziran|haz", "temmuz|tem", "ağustos|ağu|agustos", "eylül|eyl|eylul", "ekim|eki", "kasım|kas|kasim", "aralık|ara|aralik"},
}

// months maps language -> month form -> month (1-12).
var months = func() map[string]map[string]int {
	m := map[string]map[string]int{}
	for lang, names := range monthTable {
		mm := map[string]int{}
		for i, forms := range names {
			for f := range strings.SplitSeq(forms, "|") {
				mm[f] = i + 1
			}
		}
		m[lang] = mm
	}
	return m
}()

// lookupMonth reads a month name, in lang first and then in every
// language (Croatian "listopad" is October, Czech and Polish November).
func lookupMonth(tok, lang string) int {
	if n, ok := months[lang][tok]; ok {
		return n
	}
	for _, l := range fwdLangs {
		if n, ok := months[l][tok]; ok {
			return n
		}
	}
	return 0
}

// zoneOffsets are the time zone abbreviations seen in forwarded dates, in
// seconds east of UTC.
var zoneOffsets = map[string]int{
	"ut": 0, "utc": 0, "gmt": 0, "z": 0, "wet": 0, "west": 3600, "bst": 3600,
	"cet": 3600, "cest": 7200, "mez": 3600, "mesz": 7200, "eet": 7200, "eest": 10800,
	"msk": 10800, "trt": 10800, "jst": 9 * 3600,
	"est": -5 * 3600, "edt": -4 * 3600, "cst": -6 * 3600, "cdt": -5 * 3600,
	"mst": -7 * 3600, "mdt": -6 * 3600, "pst": -8 * 3600, "pdt": -7 * 3600,
}

// normSpace replaces the no-break and other Unicode spaces clients put
// around labels ("De\u00a0:") with plain spaces.
func normSpace(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r > 127 && unicode.IsSpace(r) || r == '\u200b' || r == '\ufeff' }) {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\u200b' || r == '\ufeff':
			return -1
		case r > 127 && unicode.IsSpace(r):
			return ' '
		}
		return r
	}, s)
}
