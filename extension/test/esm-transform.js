// Jest transform for plain ES modules (the inspector's front end, shipped in the Python package):
// TypeScript's transpiler rewrites their imports and exports as CommonJS, nothing else.
const ts = require('typescript');

module.exports = {
  process(source, path) {
    const { outputText } = ts.transpileModule(source, {
      fileName: path,
      compilerOptions: {
        module: ts.ModuleKind.CommonJS,
        target: ts.ScriptTarget.ES2020,
        allowJs: true
      }
    });
    return { code: outputText };
  }
};
