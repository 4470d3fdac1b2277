package config

import (
	"encoding"
	"fmt"
	"reflect"
	"strconv"
	"time"
)

// Defaults returns the configuration with every default applied and no
// environment read: what a worker uses out of the box. Programs that embed a
// worker (the publisher's bench, tests) start from it.
func Defaults() Config {
	var c Config
	v := reflect.ValueOf(&c).Elem()
	t := v.Type()
	for i := range t.NumField() {
		def, ok := t.Field(i).Tag.Lookup("default")
		if !ok {
			continue
		}
		if err := set(v.Field(i), def); err != nil {
			panic(fmt.Sprintf("config: default of %s: %v", t.Field(i).Name, err)) // a broken tag is a programming error
		}
	}
	return c
}

func set(f reflect.Value, s string) error {
	if u, ok := f.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return u.UnmarshalText([]byte(s))
	}
	if f.Type() == reflect.TypeOf(time.Duration(0)) {
		d, err := time.ParseDuration(s)
		f.SetInt(int64(d))
		return err
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(s)
	case reflect.Int:
		n, err := strconv.Atoi(s)
		f.SetInt(int64(n))
		return err
	case reflect.Float64:
		x, err := strconv.ParseFloat(s, 64)
		f.SetFloat(x)
		return err
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		f.SetBool(b)
		return err
	default:
		return fmt.Errorf("unsupported kind %s", f.Kind())
	}
	return nil
}
