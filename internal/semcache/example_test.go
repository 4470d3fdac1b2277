package semcache_test

import (
	"context"
	"fmt"

	"github.com/hybridscore/hybridscore/internal/analysis"
	"github.com/hybridscore/hybridscore/internal/analyzer"
	"github.com/hybridscore/hybridscore/internal/semcache"
	"github.com/hybridscore/hybridscore/internal/similarity"
)

func ExampleCache_Get() {
	// The worker loads through the analysis source (internal/source); any
	// function of a query will do.
	load := semcache.LoaderFunc(func(_ context.Context, q analysis.Query) (*similarity.Features, error) {
		return analyzer.Analyze(q.Text, q.Language, q.Context).Features(), nil
	})
	// Memory only; set Config.Redis to share analyses between workers.
	c, _ := semcache.New(context.Background(), semcache.Config{MaxSize: 100}, load)
	defer c.Close()
	for range 2 {
		_, status, _ := c.Get(context.Background(), analysis.Of("Implement OAuth2 login"))
		fmt.Println(status)
	}
	m := c.Metrics()
	fmt.Printf("hits %d misses %d size %d\n", m.Hits, m.Misses, m.CurrentSize)
	// Output:
	// miss
	// memory
	// hits 1 misses 1 size 1
}
