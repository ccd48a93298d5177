package main

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"panther"
)

// envOverrides applies PANTHER_<TABLE>_<KEY> environment variables over the configuration file:
// every scalar key has one, named by its TOML path in upper case ("server.max_body" is
// PANTHER_SERVER_MAX_BODY, "providers.zai.api_key" PANTHER_PROVIDERS_ZAI_API_KEY for a provider
// the file names). A variable that does not parse is an error naming it, never its value, since it
// may hold a secret.
func envOverrides(cfg *fileConfig, getenv func(string) string) (changed bool, err error) {
	return overrideStruct(reflect.ValueOf(cfg).Elem(), "PANTHER", getenv)
}

func overrideStruct(v reflect.Value, prefix string, getenv func(string) string) (bool, error) {
	changed := false
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		env := prefix + "_" + envName(name)
		c, err := overrideValue(v.Field(i), env, getenv)
		if err != nil {
			return false, err
		}
		changed = changed || c
	}
	return changed, nil
}

var durationType = reflect.TypeOf(time.Duration(0))

func overrideValue(fv reflect.Value, env string, getenv func(string) string) (bool, error) {
	switch {
	case fv.Kind() == reflect.Struct:
		return overrideStruct(fv, env, getenv)
	case fv.Kind() == reflect.Map && fv.Type().Elem().Kind() == reflect.Struct:
		changed := false
		for _, key := range fv.MapKeys() {
			elem := reflect.New(fv.Type().Elem()).Elem()
			elem.Set(fv.MapIndex(key))
			c, err := overrideStruct(elem, env+"_"+envName(key.String()), getenv)
			if err != nil {
				return false, err
			}
			if c {
				fv.SetMapIndex(key, elem)
				changed = true
			}
		}
		return changed, nil
	case fv.Kind() == reflect.Map || fv.Kind() == reflect.Slice:
		// Lists and tables of values have no one-variable form; the file holds them.
		return false, nil
	}
	raw := getenv(env)
	if raw == "" {
		return false, nil
	}
	target := fv
	if fv.Kind() == reflect.Pointer {
		target = reflect.New(fv.Type().Elem()).Elem()
	}
	bad := func(want string) error {
		return panther.Invalidf("environment variable %s: want %s", env, want)
	}
	switch {
	case target.Type() == durationType:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return false, bad("a duration such as 90s or 5m")
		}
		target.SetInt(int64(d))
	case target.Kind() == reflect.String:
		target.SetString(raw)
	case target.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return false, bad("true or false")
		}
		target.SetBool(b)
	case target.Kind() >= reflect.Int && target.Kind() <= reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return false, bad("a whole number")
		}
		target.SetInt(n)
	case target.Kind() == reflect.Float64:
		x, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return false, bad("a number")
		}
		target.SetFloat(x)
	default:
		return false, fmt.Errorf("environment variable %s: a setting of kind %s cannot be overridden", env, target.Kind())
	}
	if fv.Kind() == reflect.Pointer {
		p := reflect.New(fv.Type().Elem())
		p.Elem().Set(target)
		fv.Set(p)
	}
	return true, nil
}

// envName is a TOML key as an environment variable name part.
func envName(key string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, key)
}
