// Lint rules for the extension's TypeScript, as JupyterLab's extension template sets them up;
// formatting is prettier's (eslint-plugin-prettier reports it, eslint-config-prettier turns off
// the rules it would fight). Three of the template's rules are off, each for a reason given below.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';
import prettierRecommended from 'eslint-plugin-prettier/recommended';
import globals from 'globals';
import jupyterPlugin from '@jupyter/eslint-plugin';

export default defineConfig([
  {
    ignores: ['node_modules', 'lib', 'coverage', 'test', '**/*.js', '**/*.d.ts']
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  jupyterPlugin.configs.recommended,
  {
    files: ['**/*.ts', '**/*.tsx'],
    plugins: {
      jupyter: jupyterPlugin
    },
    languageOptions: {
      globals: {
        ...globals.browser,
        ...globals.es2015,
        ...globals.node
      },
      parserOptions: {
        project: 'tsconfig.json',
        sourceType: 'module'
      }
    },
    rules: {
      // Interfaces are PascalCase, without the template's `I` prefix: they name the JSON the kernel
      // sends (PipelineTree, PipelineInfo, ...) by what it is, as the Python side does.
      '@typescript-eslint/naming-convention': [
        'error',
        { selector: 'interface', format: ['PascalCase'] }
      ],
      // The extension's labels are English only: it has no translation bundle to look them up in.
      'jupyter/no-untranslated-string': 'off',
      // The plugin builds its panel when it activates, from small local modules it needs at once.
      'jupyter/prefer-lazy-imports': 'off',
      '@typescript-eslint/no-unused-vars': ['warn', { args: 'none' }],
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-namespace': 'off',
      '@typescript-eslint/no-use-before-define': 'off',
      curly: ['error', 'all'],
      eqeqeq: 'error',
      'prefer-arrow-callback': 'error'
    }
  },
  prettierRecommended
]);
