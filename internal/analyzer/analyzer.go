// Package analyzer is the built-in semantic analyzer: a deterministic, pure-Go
// stand-in for langextract that returns the same shape
// (docs/scoring.md#the-built-in-analyzer). The worker uses it when
// LANGEXTRACT_URL is empty, and the langextract-compatible test server serves
// it over HTTP.
//
// What it extracts, for a given text (language and context only salt the
// pattern ids, so the same text always gives the same analysis):
//
//   - concepts: content words (stop words and linking verbs removed,
//     lower-cased, plural and -ing/-ed endings stripped), most frequent
//     first, at most 12;
//   - themes: phrases of two adjacent concepts, most frequent first, at
//     most 8;
//   - domain_indicators: the domains of a small lexicon (technology,
//     security, data, business, science, academic, medical, legal, culinary)
//     whose terms occur, sorted;
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
	word     string // normalised
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
	a.Themes = append(a.Themes, themes(toks)...)
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

// themes are adjacent concept pairs within a sentence, ranked.
func themes(toks []token) []string {
	phrases := map[string]*count{}
	var order []*count
	for i := 1; i < len(toks); i++ {
		p, q := toks[i-1], toks[i]
		if !p.content || !q.content || p.sentence != q.sentence {
			continue
		}
		key := p.word + " " + q.word
		c := phrases[key]
		if c == nil {
			c = &count{word: key, first: i}
			phrases[key] = c
			order = append(order, c)
		}
		c.n++
	}
	rank(order)
	out := make([]string, 0, min(len(order), maxThemes))
	for _, c := range order[:min(len(order), maxThemes)] {
		out = append(out, c.word)
	}
	return out
}

// domains are the lexicon's domains of the words, sorted.
func domains(toks []token) []string {
	set := map[string]bool{}
	for _, t := range toks {
		for _, name := range lexicon[t.word] {
			set[name] = true
		}
	}
	out := make([]string, 0, len(set))
	for d := range set {
		out = append(out, d)
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
	if q := strings.Count(text, "?"); q > 0 || (len(toks) > 0 && interrogatives[toks[0].word]) {
		add("QUESTION", "question", max(q, 1), 0.85)
	}
	if c := codeMarks(text); c > 0 {
		add("CODE", "code", c, min(1, 0.5+0.1*float64(c)))
	}
	if len(toks) > 0 && imperatives[toks[0].word] {
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

// tokenize splits text into words, folding case and stripping common
// inflections; sentence boundaries are '.', '!', '?', ';' and newlines.
func tokenize(text string) []token {
	var toks []token
	sentence := 0
	start := -1
	pendingBreak := false
	flush := func(end int) {
		if start < 0 {
			return
		}
		raw := strings.ToLower(text[start:end])
		start = -1
		raw = strings.Trim(raw, "-_'.")
		if raw == "" {
			return
		}
		if pendingBreak && len(toks) > 0 {
			sentence++
		}
		pendingBreak = false
		toks = append(toks, classify(raw, sentence))
	}
	for i, r := range text {
		if r == utf8.RuneError {
			flush(i)
			continue
		}
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '+' || r == '#' ||
			((r == '-' || r == '\'' || r == '.') && start >= 0 && i+1 < len(text) && isWordByte(text[i+1])) {
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
	// Two-word linking verbs ("depends on", "relies on", "based on").
	for i := 0; i+1 < len(toks); i++ {
		if toks[i+1].word == "on" && dependVerbs[toks[i].word] {
			toks[i].verb, toks[i].content = "depends_on", false
		}
		if toks[i].word == "based" && toks[i+1].word == "on" {
			toks[i].verb, toks[i].content = "extends", false
		}
	}
	return toks
}

func isWordByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b >= 0x80
}

func classify(w string, sentence int) token {
	t := token{word: w, sentence: sentence}
	if v, ok := verbs[w]; ok {
		t.verb = v
		return t
	}
	if stopWords[w] || imperatives[w] || dependVerbs[w] {
		return t
	}
	t.word = stem(w)
	if stopWords[t.word] {
		return t
	}
	hasDigit := strings.ContainsFunc(t.word, unicode.IsDigit)
	t.content = utf8.RuneCountInString(t.word) >= 3 || hasDigit
	return t
}

// stem strips the most common English inflections, conservatively: a wrong
// merge costs more than a missed one.
func stem(w string) string {
	n := len(w)
	switch {
	case n > 4 && strings.HasSuffix(w, "ies"):
		return w[:n-3] + "y"
	case n > 4 && strings.HasSuffix(w, "sses"):
		return w[:n-2]
	case n > 3 && strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") && !strings.HasSuffix(w, "us") && !strings.HasSuffix(w, "is"):
		return w[:n-1]
	case n > 6 && strings.HasSuffix(w, "ing"):
		return w[:n-3]
	case n > 5 && strings.HasSuffix(w, "ed") && !strings.HasSuffix(w, "eed"):
		return w[:n-2]
	}
	return w
}
