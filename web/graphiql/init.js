// Starts GraphiQL (vendored beside this file: graphiql, react, react-dom UMD builds) against
// this server: queries and mutations to /graphql, subscriptions over /graphql/ws
// (graphql-transport-ws). A file, not an inline script, so the page's CSP forbids inline
// script. The headers typed in GraphiQL's header editor go with every HTTP request and, as
// the connection_init payload, with the WebSocket: {"Authorization": "Bearer <token>"}.
(function () {
  'use strict';
  const INTROSPECTION = `
query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives { name description isRepeatable locations args(includeDeprecated: true) { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description specifiedByURL
  fields(includeDeprecated: true) {
    name description
    args(includeDeprecated: true) { ...InputValue }
    type { ...TypeRef }
    isDeprecated deprecationReason
  }
  inputFields(includeDeprecated: true) { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue {
  name description type { ...TypeRef } defaultValue isDeprecated deprecationReason
}
fragment TypeRef on __Type {
  kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } }
}
`;
  const origin = window.location.origin;
  const wsOrigin = origin.replace(/^http/, 'ws');
  // A token the portal or the workbench stored for this site fills the header editor the
  // first time (GraphiQL keeps what is typed there afterwards); else it starts empty.
  let stored = '';
  try {
    stored = window.localStorage.getItem('taxdesk.token') || '';
  } catch {
    stored = '';
  }
  const defaultHeaders = stored ? JSON.stringify({ Authorization: `Bearer ${stored}` }, null, 2) : undefined;
  const fetchGraphql = window.GraphiQL.createFetcher({
    url: `${origin}/graphql`,
    subscriptionUrl: `${wsOrigin}/graphql/ws`,
  });
  // GraphiQL's own introspection query follows type references 9 levels deep (nesting 14),
  // past the server's depth limit (max_depth, 12), which holds for every query. The
  // schema's deepest reference is [X!]! (3 levels), so it asks the same with 5 (nesting 11).
  const fetcher = (params, opts) => fetchGraphql(
    params && params.operationName === 'IntrospectionQuery' ? { ...params, query: INTROSPECTION } : params,
    opts,
  );
  const root = window.ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(window.React.createElement(window.GraphiQL, {
    fetcher,
    defaultHeaders,
    defaultEditorToolsVisibility: true,
  }));
}());
