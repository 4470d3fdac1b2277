// Package schemas embeds the JSON Schemas of the job and result messages
// and compiles them for validation in tests and tools.
package schemas

import (
	"bytes"
	"embed"
	"fmt"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed *.schema.json examples/*.json
var files embed.FS

// FS holds the schema files and their examples.
var FS = files

var (
	once     sync.Once
	job, res *jsonschema.Schema
	errLoad  error
)

func load() {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for _, name := range []string{"job.schema.json", "result.schema.json"} {
		b, err := files.ReadFile(name)
		if err != nil {
			errLoad = err
			return
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			errLoad = fmt.Errorf("%s: %w", name, err)
			return
		}
		if err := c.AddResource(name, doc); err != nil {
			errLoad = err
			return
		}
	}
	if job, errLoad = c.Compile("job.schema.json"); errLoad != nil {
		return
	}
	res, errLoad = c.Compile("result.schema.json")
}

// Validate checks a JSON document against the "job" or "result" schema.
func Validate(which string, doc []byte) error {
	once.Do(load)
	if errLoad != nil {
		return errLoad
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return err
	}
	switch which {
	case "job":
		return job.Validate(v)
	case "result":
		return res.Validate(v)
	}
	return fmt.Errorf("schemas: unknown schema %q", which)
}
