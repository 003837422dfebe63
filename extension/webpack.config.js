// Extra build configuration merged in by `jupyter labextension build` (package.json "webpackConfig").
// The built extension ships source maps (`--source-map`); this rule reads the maps tsc writes next to
// lib/*.js, so that they lead back to the TypeScript in src/ rather than to the compiled JavaScript
// (the builder does this only in development builds).
module.exports = {
  module: {
    rules: [
      {
        test: /\.js$/,
        include: /[\\/]lib[\\/]/,
        enforce: 'pre',
        extractSourceMap: true
      }
    ]
  }
};
