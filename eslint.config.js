import neostandard from 'neostandard'

// The house style (standard, with TypeScript), as the models in ../shared/STYLE.md use it.
export default [
  ...neostandard({
    ts: true,
    ignores: ['dist/**', 'coverage/**', 'test/generated/**', 'test/artifacts/**', '.dev/**']
  }),
  {
    // Zato's own tests, ported request for request: they keep Zato's Python names
    // (new_value, parse_datetime, user_id) so that each line can be read against the original.
    files: ['test/zato/**/*.ts'],
    rules: { camelcase: 'off' }
  }
]
