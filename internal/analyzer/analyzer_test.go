package analyzer_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hybridscore/hybridscore/internal/analyzer"
	"github.com/hybridscore/hybridscore/internal/langextract"
	"github.com/hybridscore/hybridscore/internal/similarity"
)

func pattern(a, b string) float64 {
	fa := analyzer.Analyze(a, "en", "pattern_matching").Features()
	fb := analyzer.Analyze(b, "en", "pattern_matching").Features()
	_, s := similarity.Compare(fa, fb, &similarity.DefaultWeights)
	return s
}

func TestRelatedScoresHigherThanUnrelated(t *testing.T) {
	task := "Implement OAuth2 authentication with JWT tokens"
	related := pattern(task, "Build user authentication using OAuth2 protocol")
	unrelated := pattern(task, "Bake sourdough bread with a rye starter")
	t.Logf("related %.3f unrelated %.3f", related, unrelated)
	if related <= unrelated {
		t.Fatalf("related %.3f <= unrelated %.3f", related, unrelated)
	}
	if self := pattern(task, task); self != 1 {
		t.Fatalf("a text against itself scores %v, want 1", self)
	}
}

func TestExtraction(t *testing.T) {
	text := `Implement OAuth2 authentication with JWT tokens.
The gateway uses Redis and depends on the token service.
1. Validate tokens
2. Refresh tokens
What is a refresh token? A refresh token is a long-lived credential.
` + "```go\nfunc main() {\n}\n```"
	a := analyzer.Analyze(text, "en", "pattern_matching")
	types := map[string]bool{}
	for _, p := range a.SemanticPatterns {
		types[p.PatternType] = true
	}
	for _, want := range []string{"NUMBERED_LIST", "DEFINITION", "QUESTION", "CODE", "INSTRUCTION", "THEME", "TOPIC"} {
		if !types[want] {
			t.Errorf("pattern %s not found in %v", want, types)
		}
	}
	if types["BULLET_LIST"] {
		t.Errorf("BULLET_LIST found in a text without bullets")
	}
	if a.Concepts[0] != "token" {
		t.Errorf("top concept %q, want token (concepts %v)", a.Concepts[0], a.Concepts)
	}
	if !slices.Contains(a.DomainIndicators, "technology") || !slices.Contains(a.DomainIndicators, "security") {
		t.Errorf("domains %v lack technology/security", a.DomainIndicators)
	}
	rels := map[string]bool{}
	for _, r := range a.SemanticContext.Relationships {
		rels[r.Type] = true
	}
	for _, want := range []string{"implements", "uses", "depends_on", "validates"} {
		if !rels[want] {
			t.Errorf("relationship %s not found in %v", want, rels)
		}
	}
	if len(a.SemanticContext.RelationshipChains) == 0 {
		t.Errorf("no relationship chain for a sentence with two links")
	}
	if len(a.PrimaryTopics) != 5 || a.TopicWeights[a.PrimaryTopics[0]] != 1 {
		t.Errorf("primary topics %v weights %v", a.PrimaryTopics, a.TopicWeights)
	}
}

func TestDeterministicAndValid(t *testing.T) {
	text := "Build a REST API in Go that stores users in PostgreSQL and caches sessions in Redis."
	a := analyzer.Analyze(text, "en", "ctx")
	b := analyzer.Analyze(text, "en", "ctx")
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two analyses of the same text differ")
	}
	checkValid(t, a)
}

func TestEmptyAndHostileText(t *testing.T) {
	for _, text := range []string{"", " ", "\xff\xfe\xfd", strings.Repeat("a", 100000), strings.Repeat("?.\n- ", 5000), "日本語のテキスト"} {
		a := analyzer.Analyze(text, "en", "")
		checkValid(t, a)
	}
}

// checkValid round-trips a through the strict decoder the client uses.
func checkValid(t *testing.T, a *langextract.Analysis) {
	t.Helper()
	body, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	if !utf8.Valid(body) {
		t.Fatal("analysis is not valid UTF-8")
	}
	if _, err := langextract.Decode(body); err != nil {
		t.Fatalf("analysis fails validation: %v\n%s", err, body)
	}
}

func FuzzAnalyze(f *testing.F) {
	for _, s := range []string{"Implement OAuth2 authentication with JWT tokens", "1. a\n2. b\n- x\n- y", "what is it?", "", "\xff", "func f() {\n}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		a := analyzer.Analyze(text, "en", "pattern_matching")
		checkValid(t, a)
		_, s := similarity.Compare(a.Features(), a.Features(), &similarity.DefaultWeights)
		if s != 1 {
			t.Fatalf("self-similarity %v", s)
		}
	})
}
