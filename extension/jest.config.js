/** Unit tests for the extension's logic (diagram model, DOM drawing, comm protocol). */
module.exports = {
  testEnvironment: 'jsdom',
  roots: ['<rootDir>/test'],
  setupFiles: ['<rootDir>/test/setup.js'],
  transform: {
    '^.+\\.tsx?$': ['ts-jest', { tsconfig: 'tsconfig.test.json' }],
    // The inspector's front end: a plain ES module inside the Python package (workbench/inspector/static).
    '(inspector/static/.+|inspector-view\\.test)\\.js$':
      '<rootDir>/test/esm-transform.js'
  }
};
