// Package analyzer is the built-in semantic analyzer: a deterministic, pure-Go
// stand-in for langextract that returns the same shape
// (docs/scoring.md#the-built-in-analyzer). The worker uses it when
// LANGEXTRACT_URL is empty, and the langextract-compatible test server serves
// it over HTTP.
//
// Words are lower-cased, split at punctuation, hyphens and slashes, and
// reduced to their Snowball (Porter2) English stem. A lexicon of software
// work (lexicon.go) maps synonyms, abbreviations and multi-word phrases to
// canonical concepts ("login", "sign in", "OAuth2", "SSO" and "JWT" are all
// authentication), each concept to a kind of work (a theme: access control,
// software testing, release management, …) and each kind of work to a broad
// domain, so that the same work in other words shares concepts, themes and
// domains while a shared incidental word adds little. The labelled set in
// testdata/relevance at the repository root is its benchmark
// (TestRelevanceSet).
//
// What it extracts, for a given text (language and context only salt the
// pattern ids, so the same text always gives the same analysis):
//
//   - concepts: the lexicon's concepts and the other content words' stems
//     (stop words, linking verbs and words all kinds of work use removed),
//     most frequent first, at most 12;
//   - themes: the kinds of work of the concepts that head their noun
//     compound, most frequent first, then the kind of work the head verb
//     names when it is not plain new work (bug fixing, optimisation,
//     migration and upgrade, removal, refactoring: "fix" and "add" on the
//     same object are different work), at most 8 in all;
//   - domain_indicators: the domains of the concepts, technology for any
//     software term, and those of a small lexicon outside software
//     (business, science, academic, medical, legal, culinary), sorted;
//   - semantic_patterns: one entry per structure the text really shows:
//     NUMBERED_LIST, BULLET_LIST, DEFINITION, QUESTION, CODE, INSTRUCTION
//     (starts with an imperative such as implement, build, fix), THEME (a
//     theme was found) and TOPIC (a concept was found);
//   - relationships: linking verbs (uses, implements, depends_on, extends,
//     contains, produces, calls, stores, validates, integrates_with)
//     followed by a concept; two or more in one sentence form a chain;
//   - semantic_density: concepts among all words;
//     conceptual_coherence: share of concept occurrences that belong to the
//     primary topics; thematic_consistency: share of sentences that mention a
//     primary topic; primary_topics: the top 5 concepts, weighted by their
//     frequency relative to the most frequent. Every metric lies in [0, 1].
package analyzer

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/hybridscore/hybridscore/internal/langextract"
)

const (
	maxConcepts = 12
	maxThemes   = 8
	maxTopics   = 5
	// MaxInput bounds the bytes analysed; the rest of a longer text is
	// ignored, which keeps a hostile 16 KiB job as cheap as any other.
	MaxInput = 64 << 10
)

type token struct {
	raw      string   // lower-cased, as written
	word     string   // the lexicon's concept, else the stem
	concept  *concept // the lexicon's concept, or nil
	sentence int
	content  bool   // a concept candidate
	verb     string // relationship type when the word is a linking verb
}

// Analyze returns the analysis of text. It never fails: invalid UTF-8 is
// read as U+FFFD and an empty text gives empty sets.
func Analyze(text, language, semContext string) *langextract.Analysis {
	if len(text) > MaxInput {
		text = text[:MaxInput]
	}
	toks := tokenize(text)
	kind := workKind(toks)
	toks = classify(toks)
	a := &langextract.Analysis{
		SemanticPatterns: []langextract.SemanticPattern{},
		Concepts:         []string{},
		Themes:           []string{},
		DomainIndicators: []string{},
		PrimaryTopics:    []string{},
		TopicWeights:     map[string]float64{},
	}
	order, contentTotal := concepts(toks)
	for _, c := range order[:min(len(order), maxConcepts)] {
		a.Concepts = append(a.Concepts, c.word)
	}
	a.Themes = append(a.Themes, themes(toks, kind)...)
	a.DomainIndicators = append(a.DomainIndicators, domains(toks)...)
	measure(a, toks, order, contentTotal)
	relate(a, toks)
	a.SemanticPatterns = structures(text, toks, a, language, semContext)
	return a
}

// count is a word or phrase with its occurrences and first position.
type count struct {
	word  string
	n     int
	first int
}

// rank orders by frequency, then first occurrence.
func rank(cs []*count) {
	slices.SortStableFunc(cs, func(x, y *count) int {
		if d := cmp.Compare(y.n, x.n); d != 0 {
			return d
		}
		return cmp.Compare(x.first, y.first)
	})
}

// concepts returns the content words ranked, and how many content tokens
// there are.
func concepts(toks []token) (order []*count, contentTotal int) {
	counts := map[string]*count{}
	for i, t := range toks {
		if !t.content {
			continue
		}
		contentTotal++
		c := counts[t.word]
		if c == nil {
			c = &count{word: t.word, first: i}
			counts[t.word] = c
			order = append(order, c)
		}
		c.n++
	}
	rank(order)
	return order, contentTotal
}

// themes are the kinds of work of the lexicon's concepts that head their
// noun compound, ranked by how often each occurs: in "database credentials"
// the work is about credentials, and the database only says which. A text
// whose concepts are all modifiers takes their kinds of work instead.
func themes(toks []token, kind string) []string {
	var heads, modifiers []*count
	for i, t := range toks {
		if t.concept == nil {
			continue
		}
		if isHead(toks, i) {
			heads = tally(heads, t.concept.theme, i)
		} else {
			modifiers = tally(modifiers, t.concept.theme, i)
		}
	}
	order := heads
	if len(order) == 0 {
		order = modifiers
	}
	rank(order)
	n := min(len(order), maxThemes)
	if kind != "" {
		n = min(n, maxThemes-1)
	}
	out := make([]string, 0, n+1)
	for _, c := range order[:n] {
		out = append(out, c.word)
	}
	if kind != "" {
		out = append(out, kind)
	}
	return out
}

// workKind is the kind of work named by the text's head verb: the first
// sentence that opens, after fillers such as "we need to", with a verb of
// workKinds. Only the head counts: "add an index to fix the slow query" is
// new work that happens to fix something.
func workKind(toks []token) string {
	for i := range toks {
		if !opensSentence(toks, i) {
			continue
		}
		j := i
		for j < len(toks) && j-i < 4 && toks[j].sentence == toks[i].sentence && fillers[toks[j].raw] {
			j++
		}
		if j >= len(toks) || toks[j].sentence != toks[i].sentence {
			continue
		}
		if j+1 < len(toks) && toks[j+1].sentence == toks[j].sentence {
			if k, ok := workKinds[toks[j].raw+" "+toks[j+1].raw]; ok {
				return k
			}
		}
		if k, ok := workKinds[toks[j].raw]; ok {
			return k
		}
	}
	return ""
}

// isHead reports whether toks[i] ends its run of adjacent content words in
// its sentence (English noun compounds put the head last), or opens its
// sentence as an imperative, which starts no compound.
func isHead(toks []token, i int) bool {
	if opensSentence(toks, i) && imperatives[toks[i].raw] {
		return true
	}
	j := i + 1
	return j >= len(toks) || !toks[j].content || toks[j].sentence != toks[i].sentence ||
		opensSentence(toks, j)
}

func opensSentence(toks []token, i int) bool {
	return i == 0 || toks[i-1].sentence != toks[i].sentence
}

// tally counts one occurrence of word at position i.
func tally(cs []*count, word string, i int) []*count {
	for _, c := range cs {
		if c.word == word {
			c.n++
			return cs
		}
	}
	return append(cs, &count{word: word, n: 1, first: i})
}

// domains are the broad domains of the text's concepts and words, sorted:
// each kind of work's domain and technology for software, and the
// lexicon's domains outside software.
func domains(toks []token) []string {
	var out []string
	add := func(d string) {
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	for _, t := range toks {
		switch {
		case t.concept != nil:
			add(t.concept.domain)
			add("technology")
		case techWords[t.word]:
			add("technology")
		}
		for _, d := range domainWords[t.word] {
			add(d)
		}
	}
	slices.Sort(out)
	return out
}

// measure sets the primary topics, their weights and the three metrics.
func measure(a *langextract.Analysis, toks []token, order []*count, contentTotal int) {
	sentences := 0
	if len(toks) > 0 {
		sentences = toks[len(toks)-1].sentence + 1
	}
	topicSet := map[string]bool{}
	topicOcc := 0
	for _, c := range order[:min(len(order), maxTopics)] {
		a.PrimaryTopics = append(a.PrimaryTopics, c.word)
		a.TopicWeights[c.word] = float64(c.n) / float64(order[0].n)
		topicSet[c.word] = true
		topicOcc += c.n
	}
	if len(toks) > 0 {
		a.SemanticDensity = float64(contentTotal) / float64(len(toks))
	}
	if contentTotal > 0 {
		a.ConceptualCoherence = float64(topicOcc) / float64(contentTotal)
	}
	if sentences > 0 {
		seen := make([]bool, sentences)
		hit := 0
		for _, t := range toks {
			if topicSet[t.word] && !seen[t.sentence] {
				seen[t.sentence] = true
				hit++
			}
		}
		a.ThematicConsistency = float64(hit) / float64(sentences)
	}
}

// relate finds relationships — a linking verb followed, in its sentence,
// by a concept — and chains of two or more in one sentence.
func relate(a *langextract.Analysis, toks []token) {
	chains := map[int][]string{}
	var chainOrder []int
	for i, t := range toks {
		if t.verb == "" {
			continue
		}
		target := neighbour(toks, i, +1)
		if target == "" {
			continue
		}
		a.SemanticContext.Relationships = append(a.SemanticContext.Relationships,
			langextract.Relationship{Type: t.verb, Source: neighbour(toks, i, -1), Target: target})
		if _, ok := chains[t.sentence]; !ok {
			chainOrder = append(chainOrder, t.sentence)
		}
		chains[t.sentence] = append(chains[t.sentence], t.verb)
	}
	for _, s := range chainOrder {
		if len(chains[s]) >= 2 {
			a.SemanticContext.RelationshipChains = append(a.SemanticContext.RelationshipChains,
				langextract.RelationshipChain{Types: chains[s]})
		}
	}
}

// neighbour is the nearest content word from toks[i] in direction step
// (+1 or -1) within its sentence, or "".
func neighbour(toks []token, i, step int) string {
	for j := i + step; j >= 0 && j < len(toks) && toks[j].sentence == toks[i].sentence; j += step {
		if toks[j].content {
			return toks[j].word
		}
	}
	return ""
}

func structures(text string, toks []token, a *langextract.Analysis, language, semContext string) []langextract.SemanticPattern {
	out := []langextract.SemanticPattern{}
	add := func(kind, name string, freq int, confidence float64) {
		out = append(out, langextract.SemanticPattern{
			PatternID:       fmt.Sprintf("%s:%s:%s-%d", language, semContext, strings.ToLower(kind), len(out)+1),
			PatternType:     kind,
			PatternName:     name,
			Description:     name + " found in the text",
			Frequency:       freq,
			ConfidenceScore: confidence,
			// Significance grows with how often the structure occurs.
			SignificanceScore: min(1, 0.5+0.1*float64(freq)),
		})
	}
	numbered, bullets, definitions := 0, 0, 0
	for line := range strings.Lines(text) {
		l := strings.TrimSpace(line)
		switch {
		case isNumbered(l):
			numbered++
		case strings.HasPrefix(l, "- "), strings.HasPrefix(l, "* "), strings.HasPrefix(l, "• "):
			bullets++
		}
		lower := strings.ToLower(l)
		if strings.Contains(lower, " is a ") || strings.Contains(lower, " is an ") || strings.Contains(lower, " refers to ") ||
			strings.Contains(lower, " is defined as ") || strings.Contains(lower, " means ") {
			definitions++
		}
	}
	if numbered >= 2 {
		add("NUMBERED_LIST", "numbered list", numbered, 0.9)
	}
	if bullets >= 2 {
		add("BULLET_LIST", "bullet list", bullets, 0.9)
	}
	if definitions > 0 {
		add("DEFINITION", "definition", definitions, 0.8)
	}
	if q := strings.Count(text, "?"); q > 0 || (len(toks) > 0 && interrogatives[toks[0].raw]) {
		add("QUESTION", "question", max(q, 1), 0.85)
	}
	if c := codeMarks(text); c > 0 {
		add("CODE", "code", c, min(1, 0.5+0.1*float64(c)))
	}
	if len(toks) > 0 && imperatives[toks[0].raw] {
		add("INSTRUCTION", "instruction", 1, 0.8)
	}
	if len(a.Themes) > 0 {
		add("THEME", a.Themes[0], len(a.Themes), 0.7)
	}
	if len(a.Concepts) > 0 {
		add("TOPIC", a.Concepts[0], len(a.PrimaryTopics), 0.7)
	}
	return out
}

func isNumbered(l string) bool {
	i := 0
	for i < len(l) && l[i] >= '0' && l[i] <= '9' {
		i++
	}
	return i > 0 && i < len(l)-1 && (l[i] == '.' || l[i] == ')') && l[i+1] == ' '
}

func codeMarks(text string) int {
	n := strings.Count(text, "```")/2 + strings.Count(text, "();") + strings.Count(text, "=>") +
		strings.Count(text, "func ") + strings.Count(text, "def ") + strings.Count(text, "{\n")
	if strings.Count(text, "`") >= 2 && n == 0 {
		n = 1
	}
	return n
}

// tokenize splits text into lower-cased words and numbers its sentences;
// sentence boundaries are '.', '!', '?', ';' and newlines. Hyphens and
// slashes separate words ("sign-in" is "sign in"), so phrases match however
// they are written.
func tokenize(text string) []token {
	var toks []token
	sentence := 0
	start := -1
	pendingBreak := false
	flush := func(end int) {
		if start < 0 {
			return
		}
		raw := strings.Trim(strings.ToLower(text[start:end]), "_'.")
		start = -1
		if raw == "" {
			return
		}
		if pendingBreak && len(toks) > 0 {
			sentence++
		}
		pendingBreak = false
		toks = append(toks, token{raw: raw, sentence: sentence})
	}
	for i, r := range text {
		if r == utf8.RuneError {
			flush(i)
			continue
		}
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '+' || r == '#' ||
			((r == '\'' || r == '.') && start >= 0 && i+1 < len(text) && isWordByte(text[i+1])) {
			if start < 0 {
				start = i
			}
			continue
		}
		flush(i)
		switch r {
		case '.', '!', '?', ';', '\n':
			pendingBreak = true
		}
	}
	flush(len(text))
	return toks
}

func isWordByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b >= 0x80
}

// classify stems the words, joins the lexicon's phrases into one token each,
// and marks concepts and linking verbs. It reuses toks.
func classify(toks []token) []token {
	for i := range toks {
		toks[i].word = stemWord(toks[i].raw)
	}
	out := toks[:0]
	for i := 0; i < len(toks); {
		if n, c := matchPhrase(toks, i); n > 1 {
			t := toks[i]
			t.word, t.concept, t.content = c.name, c, true
			out = append(out, t)
			i += n
			continue
		}
		out = append(out, classifyWord(toks[i]))
		i++
	}
	// Two-word linking verbs ("depends on", "relies on", "based on").
	for i := 0; i+1 < len(out); i++ {
		if out[i+1].raw == "on" && dependVerbs[out[i].raw] {
			out[i].verb, out[i].content = "depends_on", false
		}
		if out[i].raw == "based" && out[i+1].raw == "on" {
			out[i].verb, out[i].content = "extends", false
		}
	}
	return out
}

// matchPhrase returns the length and concept of the longest phrase of the
// lexicon starting at toks[i] within its sentence, or 0.
func matchPhrase(toks []token, i int) (int, *concept) {
next:
	for _, p := range lex.phrases[toks[i].word] {
		if i+len(p.stems) > len(toks) {
			continue
		}
		for k, s := range p.stems[1:] {
			if t := toks[i+1+k]; t.word != s || t.sentence != toks[i].sentence {
				continue next
			}
		}
		return len(p.stems), p.concept
	}
	return 0, nil
}

// classifyWord marks a word as a linking verb, a concept of the lexicon, a
// stop word, or a concept candidate of its own.
func classifyWord(t token) token {
	if v, ok := verbs[t.raw]; ok {
		t.verb = v
		return t
	}
	c := lex.exact[t.raw]
	if c == nil {
		c = lex.words[t.word]
	}
	if c != nil {
		t.word, t.concept, t.content = c.name, c, true
		return t
	}
	if stopWords[t.raw] || imperatives[t.raw] || dependVerbs[t.raw] || stopWords[t.word] || incidental[t.word] {
		return t
	}
	t.content = utf8.RuneCountInString(t.word) >= 3 || strings.ContainsFunc(t.word, unicode.IsDigit)
	return t
}
