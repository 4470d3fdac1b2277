package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hybridscore/hybridscore/internal/config"
)

func TestDefaultsValidate(t *testing.T) {
	c := config.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":8053" || c.LangextractTimeout != 10 || c.SemanticCacheMaxSize != 1000 || c.HybridStrategy != "hybrid" || !c.HybridAdaptive || !c.Provision {
		t.Fatalf("defaults %+v", c)
	}
	if on, _ := c.RedisEnabled(); on {
		t.Fatal("Redis enabled without REDIS_HOST")
	}
	c.RedisHost = "redis"
	if on, _ := c.RedisEnabled(); !on {
		t.Fatal("Redis not enabled by REDIS_HOST")
	}
}

func TestValidateNamesTheVariable(t *testing.T) {
	for env, mutate := range map[string]func(*config.Config){
		"LANGEXTRACT_TIMEOUT":         func(c *config.Config) { c.LangextractTimeout = -1 },
		"SEMANTIC_CACHE_MAX_SIZE":     func(c *config.Config) { c.SemanticCacheMaxSize = 0 },
		"HYBRID_STRATEGY":             func(c *config.Config) { c.HybridStrategy = "x" },
		"HYBRID_VECTOR_WEIGHT":        func(c *config.Config) { c.HybridVectorWeight = 0.5 },
		"SEMANTIC_CACHE_ENABLE_REDIS": func(c *config.Config) { c.SemanticCacheEnableRedis = "maybe" },
		"DUPLICATE_WINDOW":            func(c *config.Config) { c.DuplicateWindow = -time.Second },
		"MAX_DELIVER":                 func(c *config.Config) { c.MaxDeliver = 0 },
		"DUPLICATE_WINDOW longer":     func(c *config.Config) { c.DuplicateWindow = 48 * time.Hour },
		"DUPLICATE_WINDOW than DLQ":   func(c *config.Config) { c.DuplicateWindow, c.ResultsMaxAge = 8*24*time.Hour, 30*24*time.Hour },
		"SEMANTIC_CACHE_WARM_FILE":    func(c *config.Config) { c.SemanticCacheWarmFile = "/nonexistent" },
		"NATS_TLS_CERT":               func(c *config.Config) { c.NATSTLSCert = "x" },
		"WORKER_PREFETCH":             func(c *config.Config) { c.WorkerPrefetch = config.MinPrefetch - 1 },
		"NATS_URL":                    func(c *config.Config) { c.NATSURL = "nats://u:p#w@host:4222" },
	} {
		c := config.Defaults()
		mutate(&c)
		err := c.Validate()
		if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), strings.Fields(env)[0]) {
			t.Errorf("%s: %v", env, err)
		}
	}
}
