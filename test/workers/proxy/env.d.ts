// Types for the `cloudflare:test` module the Workers Vitest integration provides.
/// <reference types="@cloudflare/vitest-plugin/types" />
