// One linter for the whole tree; formatting is prettier's job.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'build/', '.data/', 'test-results/'] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  {
    // Type-aware rules: each file is checked with the tsconfig.json nearest to it (server/, client/,
    // shared/, test/, bench/), the settings `npm run typecheck` uses. client/build.ts runs in Node, so the
    // browser's client/tsconfig.json leaves it out; it gets test/tsconfig.json, which type-checks it.
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['client/build.ts'], defaultProject: 'test/tsconfig.json' },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-syntax': [
        'error',
        { selector: 'ExportDefaultDeclaration', message: 'Use named exports.' },
      ],
    },
  },
  {
    // Tests index into arrays they have just asserted on.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
  {
    // Plain JavaScript has no tsconfig of its own: no type information, so no type-aware rules.
    files: ['**/*.js', '**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    files: ['eslint.config.js'],
    rules: { 'no-restricted-syntax': 'off' },
  },
  {
    files: ['bin/**/*.js', 'ecosystem.config.cjs'],
    languageOptions: {
      globals: { process: 'readonly', require: 'readonly', module: 'writable', __dirname: 'readonly' },
    },
  },
);
