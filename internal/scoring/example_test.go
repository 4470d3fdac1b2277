package scoring_test

import (
	"context"
	"fmt"

	"github.com/hybridscore/hybridscore/internal/combiner"
	"github.com/hybridscore/hybridscore/internal/scoring"
	"github.com/hybridscore/hybridscore/internal/semcache"
	"github.com/hybridscore/hybridscore/internal/source"
)

func ExampleService_Score() {
	cache, _ := semcache.New(context.Background(), semcache.Config{}, source.Loader{Source: source.Builtin})
	defer cache.Close()
	svc, _ := scoring.New(cache, scoring.DefaultConfig(), nil)
	o, _ := svc.Score(context.Background(), &scoring.Request{
		Task:            "Implement OAuth2 authentication with JWT tokens",
		Pattern:         "Build user authentication using OAuth2 protocol",
		Vector:          0.85,
		Characteristics: &combiner.Characteristics{Complexity: "complex"},
	})
	fmt.Printf("%s: hybrid %.3f = 0.85×%.1f + %.3f×%.1f\n", o.Status, o.Hybrid, o.Weights.Vector, o.Pattern, o.Weights.Pattern)
	// Output: scored: hybrid 0.770 = 0.85×0.6 + 0.650×0.4
}
